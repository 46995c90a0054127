using Microsoft.Extensions.Primitives;

namespace BeitV2.Web.Registry;

/// <summary>
/// Changes other servers make to a shared models folder, seen with one <c>stat</c> of the folder: every registry
/// write adds, renames or removes an entry in it (packages are renamed into place, deleted packages renamed
/// away, <c>defaults.json</c> replaced by a rename), and that moves the folder's modification time.
/// </summary>
/// <remarks>
/// File systems keep that time at a coarse granularity (milliseconds), so a change in the same tick as the one
/// the token saw would not move it. A token taken while the folder's time is younger than <see cref="Settled"/>
/// therefore reports a change at once (the registry reads the folder again), as git does with "racily clean"
/// index entries. The check is synchronous, so a change another server made before this server answers is
/// never missed; a file watcher's notifications come later.
/// </remarks>
internal sealed class ModelsFolderChangeToken : IChangeToken
{
    private static readonly TimeSpan Settled = TimeSpan.FromSeconds(2);
    private readonly string folder;
    private readonly DateTime seen;
    private readonly bool racy;

    /// <summary>Take the token before reading the folder: what changes after it is then seen.</summary>
    public ModelsFolderChangeToken(string folder)
    {
        this.folder = folder;
        seen = Directory.GetLastWriteTimeUtc(folder);
        racy = DateTime.UtcNow - seen < Settled;
    }

    public bool HasChanged => racy || Directory.GetLastWriteTimeUtc(folder) != seen;

    public bool ActiveChangeCallbacks => false;

    /// <summary>No callbacks (<see cref="ActiveChangeCallbacks"/> is false): consumers poll <see cref="HasChanged"/>.</summary>
    public IDisposable RegisterChangeCallback(Action<object?> callback, object? state) => NoCallback.Instance;

    private sealed class NoCallback : IDisposable
    {
        public static readonly NoCallback Instance = new();
        public void Dispose() { }
    }
}
