using System.Diagnostics;
using System.Text.Json;

namespace BeitV2.Bench;

/// <summary>
/// A long-lived <c>bench_reference.py worker</c> process: PyTorch eager as its own process (as a PyTorch
/// server would run), driven line by line so that its forwards take turns with the C# engines in the
/// round-robin. The times are the worker's own clock around the forward, so the pipe is not timed.
/// </summary>
public sealed class PyTorchWorker : IDisposable
{
    private readonly Process process;
    private readonly Task<string> stderr;

    public string Key { get; }
    /// <summary>OMP_WAIT_POLICY of the worker (PASSIVE, or "(unset)" for libgomp's default spinning).</summary>
    public string WaitPolicy { get; }

    public PyTorchWorker(string python, int threads, bool spinning)
    {
        Key = spinning ? EngineKeys.PyTorchSpinning : EngineKeys.PyTorch;
        WaitPolicy = spinning ? "(unset: libgomp spins)" : "PASSIVE";
        var psi = PythonReference.StartInfo(python, threads, spinning, "worker");
        psi.RedirectStandardInput = true;
        try
        {
            process = Process.Start(psi) ?? throw new InvalidOperationException($"could not start {python}");
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new InvalidOperationException($"{python} could not be started ({e.Message}). Install Debian's PyTorch (apt-get install python3-torch) or pass --no-python.", e);
        }
        stderr = process.StandardError.ReadToEndAsync();
    }

    public int Pid => process.Id;

    /// <summary>Builds the case in the worker; an engine that runs it, or the worker's error.</summary>
    public (ForwardEngine? Engine, string? Error) Load(string kind, string size, int batch)
    {
        var reply = Ask(new { op = "load", @case = kind, model = size, batch });
        return reply.GetProperty("ok").GetBoolean() ? (new Forward(this), null) : (null, reply.GetProperty("error").GetString());
    }

    private JsonElement Ask(object command)
    {
        if (process.HasExited) throw new InvalidOperationException($"the PyTorch worker exited ({process.ExitCode}): {Tail()}");
        process.StandardInput.WriteLine(JsonSerializer.Serialize(command));
        process.StandardInput.Flush();
        while (process.StandardOutput.ReadLine() is { } line)
            if (line.StartsWith('{')) return JsonDocument.Parse(line).RootElement.Clone();
        throw new InvalidOperationException($"the PyTorch worker closed its output: {Tail()}");
    }

    private string Tail()
    {
        if (!process.HasExited) return "(still running)";
        var text = stderr.IsCompleted ? stderr.Result.Trim() : "";
        return text.Length > 2000 ? text[^2000..] : text;
    }

    private sealed class Forward(PyTorchWorker worker) : ForwardEngine
    {
        public override string Key => worker.Key;

        public override double RunOnceMs()
        {
            var reply = worker.Ask(new { op = "run", n = 1 });
            if (!reply.GetProperty("ok").GetBoolean()) throw new InvalidOperationException($"PyTorch: {reply.GetProperty("error").GetString()}");
            return reply.GetProperty("ms")[0].GetDouble();
        }
    }

    public void Dispose()
    {
        try
        {
            process.StandardInput.Close();   // the worker's stdin loop ends
            if (!process.WaitForExit(10_000)) process.Kill(entireProcessTree: true);
        }
        catch (InvalidOperationException) { }
        process.Dispose();
    }
}
