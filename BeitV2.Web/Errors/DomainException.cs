namespace BeitV2.Web.Errors;

/// <summary>
/// Why a request to the service cannot be done, in the service's own terms: the jobs, registry, datasets and
/// inference code throw these and know nothing of HTTP. The message is the whole explanation a person reads
/// (what is wrong and what to do instead). <see cref="Infrastructure.ProblemExceptionHandler"/> is the one
/// place that turns each kind into a status code and a ProblemDetails body.
/// </summary>
public abstract class DomainException(string message) : Exception(message);

/// <summary>The job, model or dataset named in the request does not exist (404).</summary>
public sealed class NotFoundException(string message) : DomainException(message);

/// <summary>The thing exists but its state forbids the change (a finished job, the default model, a dataset in use): 409.</summary>
public sealed class ConflictException(string message) : DomainException(message);

/// <summary>The request itself is wrong: a missing or invalid field, a model of the wrong kind, a bad config value (400).</summary>
public class InvalidRequestException(string message) : DomainException(message);

/// <summary>The request body is not a well-formed multipart form (400, with its own title).</summary>
public sealed class MalformedBodyException(string message) : InvalidRequestException(message);

/// <summary>The input is of a type the service does not take (not multipart, not an image, a TorchScript archive): 415.</summary>
public sealed class UnsupportedInputException(string message) : DomainException(message);

/// <summary>The input has the right type but its content cannot be used (an unreadable checkpoint, a dataset with no known layout): 422.</summary>
public sealed class UnusableInputException(string message) : DomainException(message);

/// <summary>The input is over one of the configured size or count limits; the message names the limit (413).</summary>
public sealed class TooLargeException(string message) : DomainException(message);

/// <summary>The service is busy with the same kind of work right now (one import at a time, decode memory full); retrying later works (429).</summary>
public sealed class CapacityException(string message) : DomainException(message);

/// <summary>No model can serve the request yet (none of the needed kind registered, or it is being unloaded): 503.</summary>
public sealed class ModelNotReadyException(string message) : DomainException(message);

/// <summary>The data directory has no room for what the request would write (disk space or quota): 507.</summary>
public sealed class InsufficientStorageException(string message) : DomainException(message);

/// <summary>The job database (PostgreSQL, with several servers) stayed unreachable past its retries; retrying later works: 503.</summary>
/// The cause (it names the database's host) goes to the server log where this is thrown, never into the message.
public sealed class StateUnavailableException(string message) : DomainException(message);
