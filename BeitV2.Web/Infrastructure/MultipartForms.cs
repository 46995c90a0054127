using BeitV2.Web.Errors;
using Microsoft.AspNetCore.Http.Features;

namespace BeitV2.Web.Infrastructure;

/// <summary>
/// Reads a <c>multipart/form-data</c> body for the upload routes. The framework's form reader reports a
/// body it cannot parse (boundary missing or mismatched, no closing boundary, a header block that never
/// ends, garbage) as <see cref="IOException"/> or <see cref="InvalidDataException"/>; those are the
/// client's fault, so they become a 400 in words here instead of a 500 from the exception handler.
/// </summary>
public static class MultipartForms
{
    public const string MalformedDetail =
        "The multipart/form-data body could not be read: it must use the boundary named in the Content-Type header " +
        "and end with a closing boundary line. Send the request again with a well-formed multipart body " +
        "(e.g. curl -F 'name=@file').";

    public static async Task<IFormCollection> ReadAsync(HttpRequest request, FormOptions options, CancellationToken ct)
    {
        try
        {
            return await request.ReadFormAsync(options, ct);
        }
        // Size limits keep their own answers (413 from Kestrel's BadHttpRequestException, or the handler's
        // "length limit" / "count limit" mapping); a request the client aborted is not a malformed body.
        catch (BadHttpRequestException)
        {
            throw;
        }
        catch (InvalidDataException e) when (e.Message.Contains("limit", StringComparison.OrdinalIgnoreCase))
        {
            throw;
        }
        catch (Exception e) when ((e is IOException or InvalidDataException) && !ct.IsCancellationRequested)
        {
            throw new MalformedBodyException(MalformedDetail);
        }
    }
}
