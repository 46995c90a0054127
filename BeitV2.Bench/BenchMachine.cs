using System.Diagnostics;
using System.Globalization;
using System.Text.Json;

namespace BeitV2.Bench;

/// <summary>
/// What the figures of <c>perf</c> depend on, printed beside them: the load average, and which BLAS the
/// PyTorch side really uses. Debian's <c>python3-torch</c> multiplies through <c>libblas.so.3</c>, an
/// alternative that a bare install points at libblas3, the netlib reference BLAS (unblocked Fortran loops,
/// an order of magnitude slower than OpenBLAS): PyTorch figures on it compare nothing a PyTorch user would run.
/// </summary>
public static class BenchMachine
{
    /// <summary>The package that makes libblas.so.3 OpenBLAS (its alternative has a higher priority than libblas3's).</summary>
    public const string OpenBlasPackage = "libopenblas0-pthread";

    /// <summary>The 1-, 5- and 15-minute load averages, or "?" without /proc.</summary>
    public static string LoadAverage()
    {
        try
        {
            var parts = File.ReadAllText("/proc/loadavg").Split(' ');
            return $"{parts[0]} {parts[1]} {parts[2]}";
        }
        catch (IOException) { return "?"; }
        catch (UnauthorizedAccessException) { return "?"; }
    }

    /// <summary>The BLAS a process loaded: its file, its kind (openblas, blis, mkl, netlib, unknown) and its own description.</summary>
    public sealed record Blas(string Path, string Kind, string Config, string Source)
    {
        public bool IsReference => Kind == "netlib";
        public override string ToString() => $"{Config} (`{Path}`, {Source})";

        /// <summary>From the PyTorch side's <c>info</c> line (the library it mapped after a matmul).</summary>
        public static Blas FromPython(JsonElement info) => new(
            info.GetProperty("blas_path").GetString() ?? "?", info.GetProperty("blas_kind").GetString() ?? "unknown",
            info.GetProperty("blas_config").GetString() ?? "?", "loaded by the PyTorch process");
    }

    /// <summary>
    /// Where <c>libblas.so.3</c> resolves through the dynamic linker's cache (<c>ldconfig -p</c>), for runs without
    /// Python: Debian keeps each implementation in its own folder (<c>blas/</c> = netlib, <c>openblas-*/</c>).
    /// </summary>
    public static Blas FromLinkerCache()
    {
        try
        {
            var psi = new ProcessStartInfo("ldconfig", "-p") { RedirectStandardOutput = true, UseShellExecute = false };
            using var p = Process.Start(psi);
            if (p is null) return new Blas("?", "unknown", "?", "ldconfig -p");
            var text = p.StandardOutput.ReadToEnd();
            p.WaitForExit();
            var line = text.Split('\n').FirstOrDefault(l => l.TrimStart().StartsWith("libblas.so.3 ", StringComparison.Ordinal));
            if (line is null) return new Blas("none", "unknown", "no libblas.so.3 in the linker cache", "ldconfig -p");
            var link = line[(line.IndexOf("=>", StringComparison.Ordinal) + 2)..].Trim();
            var real = new FileInfo(link).ResolveLinkTarget(returnFinalTarget: true)?.FullName ?? link;
            var folder = System.IO.Path.GetFileName(System.IO.Path.GetDirectoryName(real)) ?? "";
            var kind = folder == "blas" ? "netlib" : folder.StartsWith("openblas", StringComparison.Ordinal) ? "openblas" : folder.StartsWith("blis", StringComparison.Ordinal) ? "blis" : "unknown";
            return new Blas(real, kind, kind == "netlib" ? "reference BLAS (Debian libblas3)" : folder, "libblas.so.3 in ldconfig -p");
        }
        catch (Exception e) when (e is System.ComponentModel.Win32Exception or IOException)
        {
            return new Blas("?", "unknown", $"ldconfig failed: {e.Message}", "ldconfig -p");
        }
    }

    /// <summary>Why no ratio against PyTorch is printed, or null when the BLAS is a real one.</summary>
    public static string? Refusal(Blas? blas) => blas is { IsReference: true }
        ? $"libblas.so.3 resolves to the netlib reference BLAS (`{blas.Path}`), which no PyTorch user would benchmark with: " +
          $"the PyTorch figures below are printed for the record, but **no ratio against PyTorch is**. Install OpenBLAS " +
          $"(`apt-get install {OpenBlasPackage}`; its alternative outranks libblas3's) and run again. " +
          "ONNX Runtime (MLAS) and TorchSharp (libtorch's own MKL) do not use libblas.so.3, so their ratios stand."
        : null;

    internal static string F(double v, string format = "0.0") => double.IsNaN(v) ? "–" : v.ToString(format, CultureInfo.InvariantCulture);
}
