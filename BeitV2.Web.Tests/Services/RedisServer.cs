using System.Diagnostics;
using System.Net.Sockets;
using System.Text;

namespace BeitV2.Web.Tests.Services;

/// <summary>
/// A private Redis server from Debian's <c>redis-server</c> package (installed by <c>.ci/run</c>) on a
/// free loopback port, without persistence, for the test run. Nothing is skipped: a missing binary
/// or a server that does not answer PING makes the fixture throw with the reason.
/// </summary>
public sealed class RedisServer : IDisposable
{
    private readonly Process process;
    private readonly StringBuilder output = new();

    public RedisServer()
    {
        const string binary = "/usr/bin/redis-server";
        if (!File.Exists(binary))
            throw new InvalidOperationException("redis-server was not found: install Debian's 'redis-server' package (.ci/run does).");
        Port = LocalServerProcess.FreePort();
        var psi = new ProcessStartInfo(binary) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in new[] { "--port", Port.ToString(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--protected-mode", "yes" })
            psi.ArgumentList.Add(a);
        process = Process.Start(psi) ?? throw new InvalidOperationException("could not start redis-server");
        process.OutputDataReceived += (_, e) => { lock (output) output.AppendLine(e.Data); };
        process.ErrorDataReceived += (_, e) => { lock (output) output.AppendLine(e.Data); };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        var until = DateTime.UtcNow.AddSeconds(30);
        while (!Ping())
        {
            if (process.HasExited || DateTime.UtcNow > until)
            {
                string log;
                lock (output) log = output.ToString();
                Dispose();
                throw new InvalidOperationException($"redis-server did not answer PING on port {Port}:\n{log}");
            }
            Thread.Sleep(100);
        }
    }

    public int Port { get; }

    public string ConnectionString => $"127.0.0.1:{Port}";

    private bool Ping()
    {
        try
        {
            using var client = new TcpClient();
            client.Connect("127.0.0.1", Port);
            using var stream = client.GetStream();
            stream.Write("PING\r\n"u8);
            var buffer = new byte[16];
            var n = stream.Read(buffer);
            return Encoding.ASCII.GetString(buffer, 0, n).StartsWith("+PONG");
        }
        catch (SocketException)
        {
            return false;
        }
        catch (IOException)
        {
            return false;
        }
    }

    public void Dispose()
    {
        try
        {
            if (!process.HasExited) process.Kill(entireProcessTree: true);
            process.WaitForExit(5000);
        }
        catch (InvalidOperationException) { }
        process.Dispose();
    }
}
