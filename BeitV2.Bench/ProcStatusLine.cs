using System.Globalization;

namespace BeitV2.Bench;

/// <summary>
/// A size line of <c>/proc/PID/status</c> ("VmHWM:\t 3761234 kB"). The kernel pads the number to 8 columns after
/// the tab, so from 10,000,000 kB (~9.5 GiB) on there is no space between the tab and the digits: split on
/// whitespace after the colon, never on spaces alone (that read such peaks as a parse failure, i.e. 0).
/// </summary>
public static class ProcStatusLine
{
    /// <summary>The value in bytes, or null when the line is not a "Name: N kB" line.</summary>
    public static long? Bytes(string line)
    {
        var colon = line.IndexOf(':');
        if (colon < 0) return null;
        var parts = line[(colon + 1)..].Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
        return parts.Length == 2 && parts[1] == "kB" && long.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out var kib) ? kib * 1024 : null;
    }

    /// <summary>The field (e.g. <c>VmHWM:</c>) of a process in bytes; 0 where there is no /proc or no such field.</summary>
    public static long Read(int pid, string field)
    {
        try
        {
            var line = File.ReadLines($"/proc/{pid}/status").FirstOrDefault(l => l.StartsWith(field, StringComparison.Ordinal));
            return line is null ? 0 : Bytes(line) ?? 0;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return 0; }
    }
}
