using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace BeitV2.Web.Tests.Services;

/// <summary>Helpers to run Debian's server binaries (PostgreSQL, Redis) privately on loopback for a test run.</summary>
internal static class LocalServerProcess
{
    public static bool IsRoot => Environment.UserName == "root";

    /// <summary>A TCP port that was free a moment ago on 127.0.0.1.</summary>
    public static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    /// <summary>Runs a command to completion (as <paramref name="asUser"/> through runuser when given) and returns its output; throws with the output when it fails.</summary>
    public static string Run(string file, IEnumerable<string> args, string? asUser = null, TimeSpan? timeout = null)
    {
        var psi = new ProcessStartInfo { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        if (asUser is not null)
        {
            psi.FileName = "runuser";
            foreach (var a in new[] { "-u", asUser, "--", file }) psi.ArgumentList.Add(a);
        }
        else psi.FileName = file;
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi) ?? throw new InvalidOperationException($"could not start {file}");
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(timeout ?? TimeSpan.FromSeconds(60)))
        {
            try { p.Kill(true); } catch (InvalidOperationException) { }
            throw new InvalidOperationException($"{file} {string.Join(' ', psi.ArgumentList)} did not finish in time");
        }
        var output = stdout.Result + stderr.Result;
        if (p.ExitCode != 0)
            throw new InvalidOperationException($"{file} {string.Join(' ', psi.ArgumentList)} failed ({p.ExitCode}):\n{output}");
        return output;
    }
}
