namespace BeitV2.Web.Infrastructure;

/// <summary>
/// A client error with its HTTP status, thrown anywhere in request handling and turned into an
/// RFC 7807 ProblemDetails response by <see cref="ProblemExceptionHandler"/>.
/// </summary>
public sealed class ApiProblemException(int status, string title, string detail) : Exception(detail)
{
    public int Status { get; } = status;
    public string Title { get; } = title;

    public static ApiProblemException BadRequest(string detail) => new(StatusCodes.Status400BadRequest, "Bad request", detail);
    public static ApiProblemException NotFound(string detail) => new(StatusCodes.Status404NotFound, "Not found", detail);
    public static ApiProblemException Conflict(string detail) => new(StatusCodes.Status409Conflict, "Conflict", detail);
    public static ApiProblemException TooLarge(string detail) => new(StatusCodes.Status413PayloadTooLarge, "Payload too large", detail);
    public static ApiProblemException UnsupportedMediaType(string detail) => new(StatusCodes.Status415UnsupportedMediaType, "Unsupported media type", detail);
    public static ApiProblemException Unprocessable(string detail) => new(StatusCodes.Status422UnprocessableEntity, "Unprocessable image or file", detail);
    public static ApiProblemException TooManyRequests(string detail) => new(StatusCodes.Status429TooManyRequests, "Too many requests", detail);
    public static ApiProblemException NotReady(string detail) => new(StatusCodes.Status503ServiceUnavailable, "Model not ready", detail);
}
