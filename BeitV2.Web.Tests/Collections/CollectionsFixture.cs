using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using BeitV2.Web.Tests.Api;
using BeitV2.Web.Tests.Jobs;

namespace BeitV2.Web.Tests.Collections;

/// <summary>
/// One server with the shipped models and one collection built from the first <see cref="Planned"/> Fashion-MNIST images
/// with the shipped classifier and tokenizer: indexing takes most of the time, so the tests that only read share it.
/// </summary>
public sealed class CollectionsFixture : IAsyncLifetime
{
    public const int Planned = 300;

    public ApiHost Host { get; } = new(new Dictionary<string, string?> { ["Models:SeedDefaults"] = "true", [HeldStep.Setting] = "true" });
    public HttpClient Client { get; private set; } = null!;
    public string Id { get; private set; } = "";
    public string Tokenizer { get; private set; } = "";
    public JsonElement Job { get; private set; }

    public async Task InitializeAsync()
    {
        Client = Host.CreateClient();
        Tokenizer = Host.Registry.DefaultId("tokenizer")!;
        var created = await Client.PostAsJsonAsync("/api/v1/collections",
            new { name = "Shipped clothes", dataset = "fashion-mnist", tokenizer = Tokenizer, maxImages = Planned, config = new { batchSize = 50 } })
            .JsonAsync(HttpStatusCode.Accepted);
        Id = created.Str("id");
        Job = await Jobs.Jobs.WaitAsync(Client, created.Str("job"), Jobs.Jobs.Patience, "succeeded");
    }

    public Task DisposeAsync()
    {
        Client.Dispose();
        Host.Dispose();
        return Task.CompletedTask;
    }

    public static string Sample(string file)
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var path = Path.Combine(dir.FullName, "wwwroot", "samples", file);
            if (File.Exists(path)) return path;
        }
        throw new FileNotFoundException($"wwwroot/samples/{file} not found above {AppContext.BaseDirectory}");
    }

    /// <summary>Creates a collection and waits for its job to reach one of <paramref name="statuses"/>; returns its id and job id.</summary>
    public static async Task<(string Id, string Job)> CreateAsync(HttpClient client, object request)
    {
        var created = await client.PostAsJsonAsync("/api/v1/collections", request).JsonAsync(HttpStatusCode.Accepted);
        Assert.Equal("indexing", created.Str("status"));
        return (created.Str("id"), created.Str("job"));
    }
}
