using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace BeitV2.Bench;

/// <summary>
/// The real service, BeitV2.Web, started as a child process on a free loopback port with one
/// Inference configuration; its output goes to a log file in the data directory. Disposing kills
/// this process (and only it, with its children).
/// </summary>
public sealed class ServerProcess : IAsyncDisposable
{
    private readonly Process process;
    private readonly LogSink log;

    public Uri BaseAddress { get; }
    public int Pid => process.Id;
    public string LogPath { get; }

    private ServerProcess(Process process, Uri baseAddress, LogSink log, string logPath)
    {
        this.process = process;
        BaseAddress = baseAddress;
        this.log = log;
        LogPath = logPath;
    }

    /// <param name="engine">Inference:Engine (onnx | torch), passed as the environment variable <c>Inference__Engine</c>;
    /// null leaves the server's default. A server that does not know the setting ignores it.</param>
    public static async Task<ServerProcess> StartAsync(string dataDirectory, BenchMode mode, int threads, string device, TimeSpan startTimeout, CancellationToken ct,
        string precision = "fp32", string? engine = null)
    {
        var port = FreeLoopbackPort();
        var baseAddress = new Uri($"http://127.0.0.1:{port}/");
        var dir = AppContext.BaseDirectory;
        var apphost = Path.Combine(dir, OperatingSystem.IsWindows() ? "BeitV2.Web.exe" : "BeitV2.Web");
        var psi = new ProcessStartInfo
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = dataDirectory,
        };
        if (File.Exists(apphost)) psi.FileName = apphost;
        else
        {
            psi.FileName = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet";
            psi.ArgumentList.Add(Path.Combine(dir, "BeitV2.Web.dll"));
        }
        foreach (var arg in new[]
        {
            "--urls", baseAddress.ToString().TrimEnd('/'),
            $"--Storage:DataDirectory={dataDirectory}",
            $"--Ml:Device={device}",
            $"--Ml:InferencePrecision={precision}",
            $"--Ml:Threads={threads}",
            $"--Inference:MaxBatch={mode.MaxBatch}",
            $"--Inference:MaxWaitMs={mode.MaxWaitMs}",
            "--Logging:LogLevel:Default=Warning",
            "--Logging:LogLevel:BeitV2=Information",
        }) psi.ArgumentList.Add(arg);
        psi.Environment["ASPNETCORE_ENVIRONMENT"] = "Production";
        if (engine is not null) psi.Environment["Inference__Engine"] = engine;

        var logPath = Path.Combine(dataDirectory, $"server-b{mode.MaxBatch}-w{mode.MaxWaitMs}{(engine is null ? "" : "-" + engine)}.log");
        var log = new LogSink(logPath);
        var process = new Process { StartInfo = psi, EnableRaisingEvents = true };
        process.OutputDataReceived += (_, e) => log.Write(e.Data);
        process.ErrorDataReceived += (_, e) => log.Write(e.Data);
        if (!process.Start()) throw new InvalidOperationException($"Could not start {psi.FileName}.");
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        var server = new ServerProcess(process, baseAddress, log, logPath);
        try
        {
            await server.WaitLiveAsync(startTimeout, ct);
            return server;
        }
        catch
        {
            await server.DisposeAsync();
            throw;
        }
    }

    private async Task WaitLiveAsync(TimeSpan timeout, CancellationToken ct)
    {
        using var http = new HttpClient { BaseAddress = BaseAddress, Timeout = TimeSpan.FromSeconds(5) };
        var sw = Stopwatch.StartNew();
        while (sw.Elapsed < timeout)
        {
            ct.ThrowIfCancellationRequested();
            if (process.HasExited)
                throw new InvalidOperationException($"BeitV2.Web exited with code {process.ExitCode} during start-up; see {LogPath}:\n{Tail()}");
            try
            {
                using var r = await http.GetAsync("health/live", ct);
                if (r.IsSuccessStatusCode) return;
            }
            catch (HttpRequestException) { }
            catch (TaskCanceledException) when (!ct.IsCancellationRequested) { }
            await Task.Delay(200, ct);
        }
        throw new TimeoutException($"BeitV2.Web did not answer /health/live within {timeout.TotalSeconds:0} s; see {LogPath}:\n{Tail()}");
    }

    /// <summary>The server's log so far (the file is shared with the writer).</summary>
    public string Log()
    {
        try
        {
            using var fs = new FileStream(LogPath, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
            using var reader = new StreamReader(fs);
            return reader.ReadToEnd();
        }
        catch (IOException) { return ""; }
    }

    public bool HasExited => process.HasExited;

    public string Tail(int lines = 20)
    {
        try
        {
            using var fs = new FileStream(LogPath, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
            using var reader = new StreamReader(fs);
            return string.Join('\n', reader.ReadToEnd().Split('\n').TakeLast(lines));
        }
        catch (IOException) { return ""; }
    }

    private static int FreeLoopbackPort()
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return port;
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            if (!process.HasExited)
            {
                process.Kill(entireProcessTree: true);
                using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
                try { await process.WaitForExitAsync(cts.Token); } catch (OperationCanceledException) { }
            }
        }
        catch (InvalidOperationException) { }
        process.Dispose();
        log.Close();
    }

    /// <summary>The child's output, written line by line; lines arriving after <see cref="Close"/> are dropped.</summary>
    private sealed class LogSink(string path)
    {
        private readonly StreamWriter writer = new(new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.ReadWrite)) { AutoFlush = true };
        private bool closed;

        public void Write(string? line)
        {
            if (line is null) return;
            lock (writer) if (!closed) writer.WriteLine(line);
        }

        public void Close()
        {
            lock (writer) { closed = true; writer.Dispose(); }
        }
    }
}
