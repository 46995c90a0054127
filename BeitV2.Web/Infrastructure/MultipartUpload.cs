using System.Buffers;
using System.Text;
using BeitV2.Web.Errors;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.Net.Http.Headers;

namespace BeitV2.Web.Infrastructure;

/// <summary>
/// A <c>multipart/form-data</c> upload read with <see cref="MultipartReader"/> instead of
/// <c>ReadFormAsync</c>: the form reader buffers every file part to a temporary file of its own
/// (outside the data directory) before the endpoint runs, which then had to copy it again. Here the
/// one large file part streams straight into its staging file inside the data directory, counted
/// against the size limit and the storage budget as it arrives; other parts are small fields and
/// small files (e.g. a labels list) kept in memory, each bounded. Disposing deletes the staging file.
/// </summary>
public sealed class MultipartUpload : IDisposable
{
    private const int MaxParts = 32;
    private const int MaxFieldBytes = 64 * 1024;
    private const int MaxSmallFileBytes = 4 * 1024 * 1024;

    private readonly Dictionary<string, string> fields = new(StringComparer.Ordinal);
    private readonly Dictionary<string, byte[]> smallFiles = new(StringComparer.Ordinal);

    private MultipartUpload() { }

    /// <summary>Where the file part was written; null when the form had none.</summary>
    public string? StagedFile { get; private set; }

    /// <summary>The file part's own name (without folders), as the client sent it.</summary>
    public string? FileName { get; private set; }

    public long FileBytes { get; private set; }

    /// <summary>A text field (the first one of that name), or null.</summary>
    public string? Field(string name) => fields.GetValueOrDefault(name);

    /// <summary>A small file part named in <c>smallFileFields</c>, or null.</summary>
    public byte[]? SmallFile(string name) => smallFiles.GetValueOrDefault(name);

    /// <summary>Reads the whole body.</summary>
    /// <param name="fileField">The part streamed to <paramref name="stagingPath"/>.</param>
    /// <param name="stagingPath">Given the client's file name, a new file inside the data directory.</param>
    /// <param name="maxFileBytes">413 above it (<paramref name="limitName"/> names the setting).</param>
    /// <param name="room">507 when the file outgrows it.</param>
    /// <param name="smallFileFields">Other file parts to keep in memory (up to 4 MiB each); any other file part is skipped.</param>
    /// <exception cref="DomainException">415 not multipart, 400 malformed, 413 too large, 507 no room.</exception>
    public static async Task<MultipartUpload> ReadAsync(HttpRequest request, string fileField, Func<string, string> stagingPath, long maxFileBytes,
        string limitName, StorageRoom room, IReadOnlyCollection<string>? smallFileFields = null, CancellationToken ct = default)
    {
        if (!MediaTypeHeaderValue.TryParse(request.ContentType, out var type)
            || !type.MediaType.Equals("multipart/form-data", StringComparison.OrdinalIgnoreCase))
            throw new UnsupportedInputException($"Send multipart/form-data with a '{fileField}' part.");
        var boundary = HeaderUtilities.RemoveQuotes(type.Boundary).Value;
        if (string.IsNullOrEmpty(boundary) || boundary.Length > 70)
            throw new InvalidRequestException("The multipart/form-data content type has no valid boundary parameter.");

        var upload = new MultipartUpload();
        try
        {
            var reader = new MultipartReader(boundary, request.Body) { HeadersCountLimit = 16, HeadersLengthLimit = 16 * 1024 };
            var parts = 0;
            while (await Malformed(() => reader.ReadNextSectionAsync(ct)) is { } section)
            {
                if (++parts > MaxParts) throw new InvalidRequestException($"The form has more than {MaxParts} parts.");
                if (!ContentDispositionHeaderValue.TryParse(section.ContentDisposition, out var disposition)
                    || !disposition.DispositionType.Equals("form-data", StringComparison.OrdinalIgnoreCase))
                    throw new InvalidRequestException("Every part of the form needs a 'Content-Disposition: form-data; name=...' header.");
                var name = HeaderUtilities.RemoveQuotes(disposition.Name).Value ?? "";
                if (name == fileField)
                {
                    if (upload.StagedFile is not null) throw new InvalidRequestException($"The form has more than one '{fileField}' part.");
                    upload.FileName = Path.GetFileName(HeaderUtilities.RemoveQuotes(disposition.FileNameStar.HasValue ? disposition.FileNameStar : disposition.FileName).Value ?? "");
                    upload.StagedFile = stagingPath(upload.FileName);
                    upload.FileBytes = await StreamToFileAsync(section.Body, upload.StagedFile, maxFileBytes, limitName, room, ct);
                }
                else if (disposition.IsFileDisposition())
                {
                    if (smallFileFields?.Contains(name) == true && !upload.smallFiles.ContainsKey(name))
                        upload.smallFiles[name] = await ReadSmallAsync(section.Body, MaxSmallFileBytes, $"The '{name}' file", ct);
                    else await ReadSmallAsync(section.Body, MaxSmallFileBytes, $"The '{name}' file", ct, keep: false);
                }
                else
                {
                    var bytes = await ReadSmallAsync(section.Body, MaxFieldBytes, $"The form field '{name}'", ct);
                    upload.fields.TryAdd(name, Encoding.UTF8.GetString(bytes));
                }
            }
            return upload;
        }
        catch
        {
            upload.Dispose();
            throw;
        }
    }

    /// <summary>The extension of a client's file name when it is a plain one (letters and digits), else "".</summary>
    public static string SafeExtension(string fileName)
    {
        var ext = Path.GetExtension(fileName);
        return ext.Length is > 1 and <= 17 && ext.Skip(1).All(char.IsAsciiLetterOrDigit) ? ext : "";
    }

    public void Dispose()
    {
        if (StagedFile is null) return;
        try { File.Delete(StagedFile); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }

    private static async Task<long> StreamToFileAsync(Stream body, string path, long max, string limitName, StorageRoom room, CancellationToken ct)
    {
        var buffer = ArrayPool<byte>.Shared.Rent(81920);
        try
        {
            await using var output = new FileStream(path, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1, FileOptions.Asynchronous);
            long written = 0;
            int read;
            while ((read = await Malformed(() => body.ReadAsync(buffer.AsMemory(), ct).AsTask())) > 0)
            {
                written += read;
                if (written > max) throw new TooLargeException($"The file is larger than {max} bytes, the limit ({limitName}).");
                if (written > room.Bytes) throw room.Insufficient("the upload");
                try
                {
                    await output.WriteAsync(buffer.AsMemory(0, read), ct);
                }
                catch (IOException e) when (StorageBudget.IsDiskFull(e))
                {
                    throw room.Insufficient("the upload");
                }
            }
            return written;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    private static async Task<byte[]> ReadSmallAsync(Stream body, int max, string what, CancellationToken ct, bool keep = true)
    {
        using var memory = new MemoryStream();
        var buffer = new byte[8192];
        int read;
        while ((read = await Malformed(() => body.ReadAsync(buffer.AsMemory(), ct).AsTask())) > 0)
        {
            if (memory.Length + read > max) throw new TooLargeException($"{what} is larger than {max} bytes.");
            if (keep) memory.Write(buffer, 0, read);
        }
        return memory.ToArray();
    }

    // A body that breaks the multipart grammar (wrong or missing boundary, no closing boundary, header
    // limits) surfaces from the reader as InvalidDataException or IOException: a 400, not a 500. Kestrel's
    // own BadHttpRequestException (body too large, client sent less than it declared) keeps its status.
    private static async Task<T> Malformed<T>(Func<Task<T>> read)
    {
        try
        {
            return await read();
        }
        catch (Exception e) when (e is InvalidDataException || (e is IOException && e is not BadHttpRequestException))
        {
            throw new InvalidRequestException($"The multipart/form-data body is malformed: {e.Message}");
        }
    }
}
