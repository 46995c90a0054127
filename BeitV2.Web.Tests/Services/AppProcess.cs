using System.Diagnostics;
using System.Text;

namespace BeitV2.Web.Tests.Services;

/// <summary>
/// The real app (<c>BeitV2.Web.dll</c> next to the tests) as its own process on a free loopback port,
/// for tests that need several servers or must kill one. Its console output is kept for diagnostics.
/// </summary>
public sealed class AppProcess : IDisposable
{
    private readonly Process process;
    private readonly StringBuilder output = new();
    private readonly string workingDirectory;

    /// <param name="listenHost">The address the app binds (default loopback); <see cref="BaseAddress"/> is on loopback either way.</param>
    /// <param name="launcher">A command (and its arguments) that runs <c>dotnet</c>, e.g. <c>setpriv</c> with fewer capabilities.</param>
    public AppProcess(string name, IReadOnlyDictionary<string, string> settings, string listenHost = "127.0.0.1", IReadOnlyList<string>? launcher = null)
    {
        Name = name;
        Port = LocalServerProcess.FreePort();
        BaseAddress = new Uri($"http://127.0.0.1:{Port}");
        workingDirectory = Directory.CreateTempSubdirectory("beitv2-app-").FullName;
        var app = Path.Combine(AppContext.BaseDirectory, "BeitV2.Web.dll");
        if (!File.Exists(app)) throw new InvalidOperationException($"{app} is missing: build the solution first.");
        var psi = new ProcessStartInfo(launcher is { Count: > 0 } ? launcher[0] : "dotnet")
        {
            RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false, WorkingDirectory = workingDirectory,
        };
        if (launcher is { Count: > 0 })
        {
            foreach (var argument in launcher.Skip(1)) psi.ArgumentList.Add(argument);
            psi.ArgumentList.Add("dotnet");
        }
        psi.ArgumentList.Add(app);
        psi.ArgumentList.Add($"--urls=http://{listenHost}:{Port}");
        foreach (var (k, v) in settings) psi.ArgumentList.Add($"--{k}={v}");
        psi.Environment["ASPNETCORE_ENVIRONMENT"] = "Production";
        psi.Environment["DOTNET_NOLOGO"] = "1";
        process = Process.Start(psi) ?? throw new InvalidOperationException("could not start the app");
        process.OutputDataReceived += (_, e) => Append(e.Data);
        process.ErrorDataReceived += (_, e) => Append(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        Client = new HttpClient { BaseAddress = BaseAddress, Timeout = TimeSpan.FromSeconds(60) };
    }

    /// <summary>
    /// Settings of a server that only has to start: its data folder, the CPU with one thread, no seeded models and no
    /// warm-up (start-up checks, binding rules), plus <paramref name="more"/>.
    /// </summary>
    public static Dictionary<string, string> BareSettings(string data, params (string Key, string Value)[] more)
    {
        var settings = new Dictionary<string, string>
        {
            ["Storage:DataDirectory"] = data,
            ["Ml:Device"] = "cpu",
            ["Ml:Threads"] = "1",
            ["Models:SeedDefaults"] = "false",
            ["Inference:WarmUp"] = "false",
        };
        foreach (var (k, v) in more) settings[k] = v;
        return settings;
    }

    public string Name { get; }
    public int Port { get; }
    public Uri BaseAddress { get; }
    public int ProcessId => process.Id;
    public HttpClient Client { get; }
    public bool HasExited => process.HasExited;

    public string Output
    {
        get { lock (output) return output.ToString(); }
    }

    private void Append(string? line)
    {
        if (line is null) return;
        lock (output) output.AppendLine(line);
    }

    /// <summary>Waits until <c>/health/live</c> answers (or fails with the app's output).</summary>
    public async Task WaitUntilLiveAsync(TimeSpan timeout)
    {
        var until = DateTime.UtcNow + timeout;
        while (DateTime.UtcNow < until)
        {
            if (process.HasExited) Assert.Fail($"{Name} exited with {process.ExitCode}:\n{Output}");
            try
            {
                if ((await Client.GetAsync("/health/live")).IsSuccessStatusCode) return;
            }
            catch (HttpRequestException) { }
            await Task.Delay(200);
        }
        Assert.Fail($"{Name} did not start within {timeout}:\n{Output}");
    }

    /// <summary>Waits for the process to end by itself; returns its exit code (or fails with its output).</summary>
    public async Task<int> WaitForExitAsync(TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        try { await process.WaitForExitAsync(cts.Token); }
        catch (OperationCanceledException) { Assert.Fail($"{Name} did not exit within {timeout}:\n{Output}"); }
        return process.ExitCode;
    }

    /// <summary>SIGTERM: the server stops cleanly (as <c>docker stop</c> asks); returns its exit code.</summary>
    public async Task<int> StopAsync(TimeSpan timeout)
    {
        using (var kill = Process.Start("kill", ["-TERM", process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]))
            await kill.WaitForExitAsync();
        return await WaitForExitAsync(timeout);
    }

    /// <summary>SIGKILL: no shutdown hook runs, as when a server dies.</summary>
    public void Kill()
    {
        if (!process.HasExited) process.Kill(entireProcessTree: true);
        process.WaitForExit(10_000);
    }

    /// <summary>SIGSTOP: the process keeps its sockets and locks but runs nothing, as a server stalled by a long GC pause or a frozen VM.</summary>
    public void Pause() => Signal(19);

    /// <summary>SIGCONT after <see cref="Pause"/>.</summary>
    public void Resume() => Signal(18);

    private void Signal(int signal)
    {
        if (kill(process.Id, signal) != 0) throw new InvalidOperationException($"kill({process.Id}, {signal}) failed: errno {System.Runtime.InteropServices.Marshal.GetLastPInvokeError()}");
    }

    [System.Runtime.InteropServices.DllImport("libc", SetLastError = true)]
    private static extern int kill(int pid, int signal);

    public void Dispose()
    {
        Client.Dispose();
        try
        {
            if (!process.HasExited)
            {
                process.Kill(entireProcessTree: true);
                process.WaitForExit(10_000);
            }
        }
        catch (InvalidOperationException) { }
        process.Dispose();
        try { Directory.Delete(workingDirectory, recursive: true); }
        catch (IOException) { }
    }
}
