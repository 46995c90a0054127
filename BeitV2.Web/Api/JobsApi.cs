using System.Text.Json;
using BeitV2.Web.Errors;
using BeitV2.Web.Jobs;

namespace BeitV2.Web.Api;

/// <summary><c>/api/v1/jobs</c>: training jobs (queued on Hangfire, progress over <c>/hubs/training</c>).</summary>
public static class JobsApi
{
    public sealed record JobAccepted(string Id, string Status);

    private static readonly JsonSerializerOptions RequestJson = new(JsonSerializerDefaults.Web);

    public static RouteGroupBuilder MapJobsApi(this IEndpointRouteBuilder app)
    {
        var group = app.MapGroup("/api/v1/jobs").WithTags("Jobs");

        group.MapPost("/", Create)
            .Accepts<JobRequest>("application/json")
            .WithSummary("Start a job: type tokenizer|pretrain|linear-probe|finetune|segmentation|pipeline (training), evaluate (scores a classifier or segmenter)")
            .Produces<JobAccepted>(StatusCodes.Status202Accepted)
            .ProducesProblem(400).ProducesProblem(401).ProducesProblem(404).ProducesProblem(415);

        group.MapGet("/", (JobStore store) => TypedResults.Ok(store.List().Select(store.ForClient).ToList()))
            .WithSummary("All jobs (with diskBytes: what each job's folder holds)");

        group.MapGet("/{id}", (string id, JobStore store) => TypedResults.Ok(store.ForClient(store.Get(id))))
            .WithSummary("One job: status, progress, metrics, checkpoints, output model, diskBytes").ProducesProblem(404);

        group.MapDelete("/{id}", (string id, JobStore store) =>
            {
                store.Delete(id);
                return TypedResults.NoContent();
            })
            .WithSummary("Delete a finished job: its folder, checkpoints, metrics and log (not its output model: DELETE /api/v1/models/{id}); 409 while queued or running")
            .ProducesProblem(401).ProducesProblem(404).ProducesProblem(409);

        group.MapGet("/{id}/metrics", (string id, JobStore store) =>
            {
                store.Get(id);
                return TypedResults.Ok(store.ReadMetrics(id));
            })
            .WithSummary("The job's metric time series").ProducesProblem(404);

        group.MapGet("/{id}/log", (string id, int? tail, JobStore store) =>
            {
                store.Get(id);
                var n = tail ?? 500;
                if (n < 1) throw new InvalidRequestException($"tail must be at least 1, not {n}.");
                return TypedResults.Ok(JobArtifacts.ReadLog(id, store.JobDirectory(id), n));
            })
            .WithSummary("The job's log lines (the newest 'tail', default 500), as broadcast on the hub's 'log' messages")
            .ProducesProblem(400).ProducesProblem(404);

        group.MapGet("/{id}/codebook", (string id, JobStore store) =>
            {
                var job = store.Get(id);
                if (job.Type != JobType.Tokenizer)
                    throw new NotFoundException($"Job '{id}' is {("aeiou".Contains(job.Type.Name()[0]) ? "an" : "a")} {job.Type.Name()} job; only tokenizer jobs have codebook statistics.");
                return TypedResults.Ok(JobArtifacts.ReadCodebook(id, store.JobDirectory(id), JobArtifacts.ConfiguredCodebookSize(job)));
            })
            .WithSummary("Tokenizer jobs: how often each code was assigned so far in the current epoch (live codebook usage)")
            .ProducesProblem(404);

        group.MapPost("/{id}/cancel", (string id, JobScheduler scheduler) =>
                TypedResults.Accepted($"/api/v1/jobs/{id}", Accepted(scheduler.Cancel(id))))
            .WithSummary("Cancel: the job saves a checkpoint and stops (409 when it has finished)")
            .Produces<JobAccepted>(StatusCodes.Status202Accepted).ProducesProblem(401).ProducesProblem(404).ProducesProblem(409);

        group.MapPost("/{id}/resume", (string id, JobScheduler scheduler) =>
                TypedResults.Accepted($"/api/v1/jobs/{id}", Accepted(scheduler.Resume(id))))
            .WithSummary("Resume a cancelled or failed job from its newest checkpoint")
            .Produces<JobAccepted>(StatusCodes.Status202Accepted).ProducesProblem(401).ProducesProblem(404).ProducesProblem(409);
        return group;
    }

    private static JobAccepted Accepted(JobRecord job) => new(job.Id, job.Status);

    private static async Task<IResult> Create(HttpRequest http, JobValidator validator, JobStore store, JobScheduler scheduler, CancellationToken ct)
    {
        if (!http.HasJsonContentType())
            throw new UnsupportedInputException("Send the job as application/json: {\"type\": \"finetune\", \"dataset\": \"fashion-mnist\"}.");
        JobRequest? request;
        try
        {
            request = await JsonSerializer.DeserializeAsync<JobRequest>(http.Body, RequestJson, ct);
        }
        catch (JsonException e)
        {
            throw new InvalidRequestException($"The body is not a valid job request: {e.Message}");
        }
        if (request is null) throw new InvalidRequestException("The body is empty; send a JSON job request.");
        var id = "job-" + Guid.NewGuid().ToString("N")[..12];
        var job = store.Create(validator.Validate(request, id));
        job = scheduler.Enqueue(job.Id);
        return TypedResults.Accepted($"/api/v1/jobs/{job.Id}", Accepted(job));
    }
}
