using BeitV2.Web.Configuration;
using BeitV2.Web.Errors;
using Microsoft.Extensions.Options;

namespace BeitV2.Web.Infrastructure;

/// <summary>How much free space the file system holding a folder has (injectable, so tests can simulate a full disk).</summary>
public interface IFreeSpaceProbe
{
    long AvailableBytes(string directory);
}

/// <summary>The real probe: <see cref="DriveInfo"/> of the folder's file system (statfs on Linux).</summary>
public sealed class DriveFreeSpaceProbe : IFreeSpaceProbe
{
    public long AvailableBytes(string directory) => new DriveInfo(directory).AvailableFreeSpace;
}

/// <summary>The room left for a write and why it is not more, in words for a 507 answer.</summary>
public readonly record struct StorageRoom(long Bytes, string Explanation)
{
    /// <summary>The 507 answer for something of <paramref name="needed"/> bytes (or more, when unknown) that does not fit.</summary>
    public InsufficientStorageException Insufficient(string what, long? needed = null) => new(
        $"Not enough storage for {what}{(needed is { } n ? $" ({n} bytes)" : "")}: only {Bytes} bytes may still be written ({Explanation}). " +
        "Free space by deleting finished jobs, unused datasets or models (DELETE /api/v1/jobs/{id}, /api/v1/datasets/{id}, /api/v1/models/{id}).");
}

/// <summary>
/// The disk budget of uploads: the free space of the data directory's file system above
/// <c>Storage:MinFreeBytes</c>, and what the quota <c>Storage:MaxDataBytes</c> leaves. Checked before an
/// upload is written and enforced while it is written, so a full disk gives a 507, not a torn file.
/// </summary>
public sealed class StorageBudget(DataDirectory data, IFreeSpaceProbe probe, IOptions<StorageOptions> options)
{
    public const int Status507 = StatusCodes.Status507InsufficientStorage;

    public StorageRoom Room()
    {
        var o = options.Value;
        var reserve = Math.Max(0, o.MinFreeBytes);
        var free = probe.AvailableBytes(data.Root);
        var room = free - reserve;
        var why = $"{free} bytes free on the data directory's disk, of which Storage:MinFreeBytes = {reserve} stay free";
        if (o.MaxDataBytes > 0)
        {
            var used = DiskUsage.Of(data.Root);
            if (o.MaxDataBytes - used < room)
            {
                room = o.MaxDataBytes - used;
                why = $"the data directory holds {used} bytes of its quota Storage:MaxDataBytes = {o.MaxDataBytes}";
            }
        }
        return new StorageRoom(Math.Max(0, room), why);
    }

    /// <summary>True for "no space left on device" and "disk quota exceeded" (ENOSPC, EDQUOT on Linux, ERROR_DISK_FULL / ERROR_HANDLE_DISK_FULL on Windows).</summary>
    public static bool IsDiskFull(IOException e) => e.HResult is 28 or 122 or unchecked((int)0x80070070) or unchecked((int)0x80070027);
}
