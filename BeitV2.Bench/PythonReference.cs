using System.Diagnostics;
using System.Text.Json;

namespace BeitV2.Bench;

/// <summary>
/// Runs <c>reference/bench_reference.py</c> (the PyTorch side of <c>perf</c>) as a child process with the
/// same thread count as the C# side and <c>OMP_WAIT_POLICY=PASSIVE</c>, and returns its JSON lines.
/// </summary>
public sealed class PythonReference(string python, int threads)
{
    public static string ScriptPath => Path.Combine(AppContext.BaseDirectory, "reference", "bench_reference.py");

    /// <summary>
    /// How the reference runs: <paramref name="threads"/> torch threads, OpenBLAS threads and OpenMP threads, and
    /// <c>OMP_WAIT_POLICY=PASSIVE</c> unless <paramref name="spinning"/>. With libgomp's default, torch's OpenMP
    /// threads spin after each parallel region and on 2 cores take the CPU from OpenBLAS's own threads: the
    /// Base batch-1 forward was ~2.5× slower (720–860 ms against 252–277 ms passive; issue 17), which is what a
    /// competent PyTorch user would not leave in place.
    /// </summary>
    public static ProcessStartInfo StartInfo(string python, int threads, bool spinning, params string[] args)
    {
        var psi = new ProcessStartInfo(python)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        psi.ArgumentList.Add(ScriptPath);
        foreach (var a in args) psi.ArgumentList.Add(a);
        var n = threads.ToString(System.Globalization.CultureInfo.InvariantCulture);
        psi.ArgumentList.Add("--threads");
        psi.ArgumentList.Add(n);
        // Debian's torch 1.13 multiplies through the system BLAS (libblas.so.3), which reads its thread count when it loads.
        psi.Environment["OPENBLAS_NUM_THREADS"] = n;
        psi.Environment["OMP_NUM_THREADS"] = n;
        if (spinning) psi.Environment.Remove("OMP_WAIT_POLICY");
        else psi.Environment["OMP_WAIT_POLICY"] = "PASSIVE";
        return psi;
    }

    public async Task<List<JsonElement>> RunAsync(CancellationToken ct, params string[] args)
    {
        var psi = StartInfo(python, threads, spinning: false, args);
        using var process = new Process { StartInfo = psi };
        try
        {
            if (!process.Start()) throw new InvalidOperationException($"could not start {python}");
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new InvalidOperationException($"{python} could not be started ({e.Message}). Install Debian's PyTorch (apt-get install python3-torch) or pass --no-python.", e);
        }
        using var reg = ct.Register(() => { try { process.Kill(entireProcessTree: true); } catch (InvalidOperationException) { } });
        var stderr = process.StandardError.ReadToEndAsync(ct);
        var lines = new List<JsonElement>();
        while (await process.StandardOutput.ReadLineAsync(ct) is { } line)
        {
            if (line.Length == 0 || line[0] != '{') continue;
            lines.Add(JsonDocument.Parse(line).RootElement.Clone());
        }
        await process.WaitForExitAsync(ct);
        var err = await stderr;
        if (process.ExitCode != 0)
        {
            var hint = err.Contains("No module named 'torch'", StringComparison.Ordinal)
                ? " PyTorch is missing: apt-get install python3-torch (Debian 12 ships 1.13 with OpenBLAS), or pass --no-python." : "";
            throw new InvalidOperationException($"{Path.GetFileName(ScriptPath)} {string.Join(' ', args)} exited with {process.ExitCode}.{hint}\n{err.Trim()}");
        }
        return lines;
    }
}
