using BeitV2.Ml.Checkpoints;
using BeitV2.Ml.Data;
using BeitV2.Ml.Imaging;
using BeitV2.Web.Errors;
using Microsoft.AspNetCore.Diagnostics;

namespace BeitV2.Web.Infrastructure;

/// <summary>
/// The one place where errors become HTTP: every <see cref="DomainException"/> and the ML library's own
/// exceptions (<see cref="ImageDecodeException"/>, <see cref="CheckpointException"/>, <see cref="DatasetException"/>)
/// get the contract's status code and a ProblemDetails body whose detail is the exception's message (scrubbed of
/// server paths); anything else is a bug and becomes a logged 500. The server keeps serving either way.
/// </summary>
public sealed class ProblemExceptionHandler(IProblemDetailsService problems, ILogger<ProblemExceptionHandler> logger) : IExceptionHandler
{
    public async ValueTask<bool> TryHandleAsync(HttpContext context, Exception exception, CancellationToken cancellationToken)
    {
        var (status, title, detail) = Classify(exception);
        detail = ClientText.Scrub(detail);
        // A deliberate 5xx (503: no model of the needed kind yet; 507: no room on disk) is a state of the service, not a bug.
        if (status >= 500 && exception is DomainException or DatasetException or CheckpointException or ImageDecodeException) logger.LogWarning("{Status} on {Path}: {Detail}", status, context.Request.Path, detail);
        else if (status >= 500) logger.LogError(exception, "Unhandled error on {Path}", context.Request.Path);
        else logger.LogDebug("Client error {Status} on {Path}: {Detail}", status, context.Request.Path, detail);
        if (status == StatusCodes.Status429TooManyRequests) context.Response.Headers.RetryAfter = "1";
        if (exception is StateUnavailableException) context.Response.Headers.RetryAfter = "5";
        context.Response.StatusCode = status;
        return await problems.TryWriteAsync(new ProblemDetailsContext
        {
            HttpContext = context,
            Exception = exception,
            ProblemDetails = { Status = status, Title = title, Detail = detail },
        });
    }

    public static (int Status, string Title, string Detail) Classify(Exception e) => e switch
    {
        NotFoundException => (404, "Not found", e.Message),
        ConflictException => (409, "Conflict", e.Message),
        MalformedBodyException => (400, "Malformed multipart body", e.Message),
        InvalidRequestException => (400, "Bad request", e.Message),
        UnsupportedInputException => (415, "Unsupported media type", e.Message),
        UnusableInputException => (422, "Unprocessable image or file", e.Message),
        TooLargeException => (413, "Payload too large", e.Message),
        CapacityException => (429, "Too many requests", e.Message),
        ModelNotReadyException => (503, "Model not ready", e.Message),
        StateUnavailableException => (503, "Job database unavailable", e.Message),
        InsufficientStorageException => (507, "Insufficient storage", e.Message),
        ImageDecodeException d => d.Error switch
        {
            ImageDecodeError.Empty => (400, "Empty image", d.Message),
            ImageDecodeError.UnknownFormat => (415, "Not an image", d.Message),
            ImageDecodeError.Corrupt => (400, "Undecodable image", d.Message),
            ImageDecodeError.TooLarge => (422, "Image too large", d.Message),
            ImageDecodeError.ZeroSize => (422, "Empty image", d.Message),
            ImageDecodeError.AspectRatio => (422, "Unsupported image shape", d.Message),
            _ => (400, "Undecodable image", d.Message),
        },
        CheckpointException c => (422, "Unusable checkpoint", c.Message),
        DatasetException d => d.Error switch
        {
            DatasetError.InvalidArchive => (400, "Bad request", d.Message),
            DatasetError.TooLarge => (413, "Payload too large", d.Message),
            DatasetError.InsufficientStorage => (507, "Insufficient storage", d.Message),
            _ => (422, "Unprocessable image or file", d.Message),
        },
        BadHttpRequestException b when b.StatusCode == StatusCodes.Status413PayloadTooLarge => (413, "Payload too large", b.Message),
        BadHttpRequestException b => (b.StatusCode, "Bad request", b.Message),
        InvalidDataException i when i.Message.Contains("length limit", StringComparison.OrdinalIgnoreCase) => (413, "Payload too large", i.Message),
        InvalidDataException i => (400, "Bad request", i.Message),
        OperationCanceledException => (499, "Client closed request", "The request was cancelled."),
        _ => (500, "Internal error", "An unexpected error occurred; it has been logged."),
    };
}
