using System.Reflection;
using BeitV2.Ml.Checkpoints;

namespace BeitV2.Ml.Tests.Architecture;

/// <summary>
/// The ML library stays free of the web host: models, checkpoint I/O, data and trainers must be
/// usable from a console tool or another host without ASP.NET Core.
/// </summary>
public class LayeringTests
{
    [Fact]
    public void The_ml_library_references_no_aspnetcore_or_web_assembly()
    {
        var references = typeof(ModelPackage).Assembly.GetReferencedAssemblies().Select(a => a.Name ?? "").ToList();
        Assert.NotEmpty(references);
        Assert.DoesNotContain(references, n => n.StartsWith("Microsoft.AspNetCore", StringComparison.Ordinal));
        Assert.DoesNotContain(references, n => n.StartsWith("BeitV2.Web", StringComparison.Ordinal));
        Assert.DoesNotContain(references, n => n.StartsWith("Hangfire", StringComparison.Ordinal));
    }

    [Fact]
    public void This_test_project_runs_without_the_web_host()
    {
        // The split is only real if these tests never load the host: a web assembly here would mean
        // an ML test reached into ASP.NET Core through a shared helper.
        var references = Assembly.GetExecutingAssembly().GetReferencedAssemblies().Select(a => a.Name ?? "").ToList();
        Assert.Contains("BeitV2.Ml", references);
        Assert.DoesNotContain(references, n => n.StartsWith("Microsoft.AspNetCore", StringComparison.Ordinal) || n == "BeitV2.Web");
    }
}
