using System.Net;
using System.Text.Json;
using System.Text.Json.Nodes;
using BeitV2.Web.Jobs;
using BeitV2.Web.Tests.Api;
using Microsoft.Extensions.DependencyInjection;

namespace BeitV2.Web.Tests.Jobs;

/// <summary>Job records on disk written by earlier versions: their <c>type</c> and <c>teacher</c> read back, and are written back the same way.</summary>
[Collection(JobsCollection.Name)]
public sealed class JobRecordCompatibilityTests
{
    /// <summary>A finished job's <c>job.json</c> as earlier versions wrote it (a pretrain job's tokenizer under "teacher").</summary>
    private static string OldRecord(string id, string type, string? teacher) => $$"""
        {
          "id": "{{id}}",
          "type": "{{type}}",
          "name": null,
          "dataset": "fashion-mnist",
          "baseModel": null,
          "teacher": {{(teacher is null ? "null" : $"\"{teacher}\"")}},
          "config": { "epochs": 1 },
          "status": "succeeded",
          "createdAt": "2026-11-20T10:00:00+00:00",
          "startedAt": "2026-11-20T10:00:01+00:00",
          "finishedAt": "2026-11-20T10:02:00+00:00",
          "progress": { "epoch": 1, "epochs": 1, "step": 4, "steps": 4, "fraction": 1, "etaSeconds": null },
          "lastMetrics": { "loss": 1.5, "accuracy": null },
          "checkpoints": [],
          "outputModel": "model-{{id}}",
          "error": null,
          "attempt": "a1",
          "runs": 1,
          "server": "old-server",
          "runId": null,
          "heartbeatAt": null,
          "cancelRequested": false
        }
        """;

    [Theory]
    [InlineData("tokenizer", JobType.Tokenizer)]
    [InlineData("pretrain", JobType.Pretrain)]
    [InlineData("linear-probe", JobType.LinearProbe)]
    [InlineData("finetune", JobType.FineTune)]
    [InlineData("segmentation", JobType.Segmentation)]
    [InlineData("pipeline", JobType.Pipeline)]
    [InlineData("evaluate", JobType.Evaluate)]
    public void EveryJobType_ReadsAndWritesItsName(string name, JobType type)
    {
        var job = JsonSerializer.Deserialize<JobRecord>(OldRecord("j", name, null), JobStore.Json)!;
        Assert.Equal(type, job.Type);
        Assert.Equal(name, job.Type.Name());
        Assert.Equal(name, JsonNode.Parse(JsonSerializer.Serialize(job, JobStore.Json))!["type"]!.GetValue<string>());
        Assert.True(JobTypes.TryParse(name, out var parsed) && parsed == type);
    }

    [Fact]
    public void APretrainJobsTeacher_IsItsTokenizer_AndIsWrittenBackAsTeacher()
    {
        var job = JsonSerializer.Deserialize<JobRecord>(OldRecord("p", "pretrain", "vq-kd-tokenizer-1"), JobStore.Json)!;
        Assert.Equal("vq-kd-tokenizer-1", job.Tokenizer);
        Assert.Null(job.Teacher);

        var written = JsonNode.Parse(JsonSerializer.Serialize(job with { Runs = 2 }, JobStore.Json))!.AsObject();
        Assert.Equal("vq-kd-tokenizer-1", written["teacher"]!.GetValue<string>());
        Assert.False(written.ContainsKey("tokenizer"));
        Assert.Equal(JsonNode.Parse(OldRecord("p", "pretrain", "vq-kd-tokenizer-1"))!.AsObject().Select(p => p.Key).Order(),
            written.Select(p => p.Key).Order());
    }

    [Fact]
    public void ATokenizerJobsTeacher_StaysItsTeacher()
    {
        var job = JsonSerializer.Deserialize<JobRecord>(OldRecord("t", "tokenizer", "clip-teacher"), JobStore.Json)!;
        Assert.Equal("clip-teacher", job.Teacher);
        Assert.Null(job.Tokenizer);
        Assert.Equal("clip-teacher", JsonNode.Parse(JsonSerializer.Serialize(job, JobStore.Json))!["teacher"]!.GetValue<string>());
    }

    [Fact]
    public async Task AnOldRecordOnDisk_IsServedAsBefore()
    {
        using var host = new ApiHost();
        using var client = host.CreateClient();
        var folder = Path.Combine(host.DataDirectory, "jobs", "old-pretrain");
        Directory.CreateDirectory(folder);
        await File.WriteAllTextAsync(Path.Combine(folder, "job.json"), OldRecord("old-pretrain", "pretrain", "vq-kd-tokenizer-1"));

        var job = await client.GetAsync("/api/v1/jobs/old-pretrain").JsonAsync(HttpStatusCode.OK);
        Assert.Equal("pretrain", job.Str("type"));
        Assert.Equal("vq-kd-tokenizer-1", job.Str("teacher"));
        Assert.Equal("succeeded", job.Str("status"));
        Assert.Equal("vq-kd-tokenizer-1", host.Services.GetRequiredService<JobStore>().Get("old-pretrain").Tokenizer);
    }

    [Fact]
    public async Task TheOpenApiDocument_DescribesTheJobAsBefore_WithItsTypeNames()
    {
        using var host = new ApiHost();
        using var client = host.CreateClient();
        using var doc = JsonDocument.Parse(await client.GetStringAsync("/swagger/v1/swagger.json"));
        var schemas = doc.RootElement.GetProperty("components").GetProperty("schemas");
        var properties = schemas.GetProperty("JobRecord").GetProperty("properties").EnumerateObject().Select(p => p.Name).ToList();
        Assert.Equal(JsonNode.Parse(OldRecord("x", "pretrain", null))!.AsObject().Select(p => p.Key).Order(),
            properties.Where(p => p is not ("diskBytes" or "result" or "collection")).Order()); // result: evaluate and index jobs, collection: index jobs; written when set
        Assert.Equal(JobTypes.All, schemas.GetProperty("JobType").GetProperty("enum").EnumerateArray().Select(e => e.GetString()));
    }
}
