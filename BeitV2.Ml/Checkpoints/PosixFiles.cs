using System.Runtime.InteropServices;

namespace BeitV2.Ml.Checkpoints;

/// <summary>
/// The two POSIX file calls .NET does not offer: <c>fsync</c> of a directory (<see cref="File.OpenHandle"/> refuses to
/// open one) and <c>link</c>, which fails when the new name exists (<see cref="File.Move(string, string, bool)"/> without
/// overwrite checks first and renames after, so two writers at once can both "win"). Linux only; callers check
/// <see cref="OperatingSystem.IsLinux"/>.
/// </summary>
internal static partial class PosixFiles
{
    private const string Libc = "libc";
    private const int ReadOnly = 0;           // O_RDONLY
    private const int CloseOnExec = 0x80000;  // O_CLOEXEC (02000000), the same on x64 and arm64
    /// <summary><c>EEXIST</c>: the new name of <see cref="Link"/> exists.</summary>
    public const int AlreadyExists = 17;

    [LibraryImport(Libc, EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Open(string path, int flags, int mode);

    [LibraryImport(Libc, EntryPoint = "fsync", SetLastError = true)]
    private static partial int Fsync(int fd);

    [LibraryImport(Libc, EntryPoint = "close", SetLastError = true)]
    private static partial int Close(int fd);

    [LibraryImport(Libc, EntryPoint = "link", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int LinkNative(string existing, string created);

    /// <summary>Opens <paramref name="directory"/> read-only and fsyncs it: the names created, renamed or removed in it reach the disk.</summary>
    /// <returns>0, or the <c>errno</c> of the call that failed (some file systems refuse to fsync a directory).</returns>
    public static int FsyncDirectory(string directory)
    {
        var fd = Open(directory, ReadOnly | CloseOnExec, 0);
        if (fd < 0) return Marshal.GetLastPInvokeError();
        var error = Fsync(fd) == 0 ? 0 : Marshal.GetLastPInvokeError();
        Close(fd);
        return error;
    }

    /// <summary><c>link(existing, created)</c>: 0, or the <c>errno</c> (<see cref="AlreadyExists"/> when <paramref name="created"/> exists).</summary>
    public static int Link(string existing, string created) =>
        LinkNative(existing, created) == 0 ? 0 : Marshal.GetLastPInvokeError();
}
