namespace BeitV2.Web.Collections;

/// <summary>
/// The exclusive lock of one collection's writers (the index job's commits, uploads, deletion), across threads and
/// servers: a <c>flock</c> on <c>collection.lock</c>, as <see cref="Jobs.JobStore"/> locks <c>job.lock</c>, which holds
/// between processes on one host and on NFSv4. Readers take no lock (see <see cref="CollectionState"/>).
/// </summary>
internal sealed class CollectionLock : IDisposable
{
    private readonly FileStream file;

    /// <exception cref="DirectoryNotFoundException">the collection was deleted.</exception>
    public CollectionLock(string directory)
    {
        var path = Path.Combine(directory, "collection.lock");
        for (var attempt = 0; ; attempt++)
        {
            try
            {
                file = new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None, 1, FileOptions.None);
                return;
            }
            catch (IOException) when (attempt < 60_000 && Directory.Exists(directory))
            {
                // Another writer holds it: a commit takes milliseconds, an upload's index save up to seconds.
                Thread.Sleep(attempt < 20 ? 1 : 10);
            }
            catch (IOException) when (Directory.Exists(directory))
            {
                throw new Errors.ConflictException(
                    "The collection is busy: another writer (its index job building the final index, or an upload) has held it for minutes. Retry later.");
            }
        }
    }

    public void Dispose() => file.Dispose();
}
