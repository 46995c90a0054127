// BeitV2.Web: the ASP.NET Core host. This file is the table of contents; each area lives in its
// own extension method.
using BeitV2.Web.Api;
using BeitV2.Web.Collections;
using BeitV2.Web.Hosting;
using BeitV2.Web.Inference;
using BeitV2.Web.Infrastructure;
using BeitV2.Web.Jobs;
using BeitV2.Web.Pipeline;
using BeitV2.Web.Registry;

if (args is ["pipeline", ..]) return BeitV2.Web.Pipeline.PipelineCommand.Run(args[1..]); // the training pipeline as a command
if (args is ["evaluate", ..]) return BeitV2.Web.Commands.EvaluateCommand.Run(args[1..]); // score a registered model on a dataset split
if (args is ["fit-domain", ..]) return BeitV2.Web.Commands.FitDomainCommand.Run(args[1..]); // a model's domain and out-of-domain fit
if (args is ["domain-auroc", ..]) return BeitV2.Web.Commands.DomainAurocCommand.Run(args[1..]); // how well that fit spots photos

var builder = WebApplication.CreateBuilder(new WebApplicationOptions
{
    Args = args,
    WebRootPath = WebRoot.Locate(),
});

builder.AddServiceDefaults();          // options, ProblemDetails, limits, Swagger, metrics
builder.Services.AddStorageLimits();   // disk budget of uploads, start-up sweep of leftovers
builder.Services.AddModelRegistry();   // models on disk, labels
builder.Services.AddInference();       // loaded models, dynamic batching, back-pressure
builder.Services.AddTrainingJobs(builder.Configuration); // datasets, job store, Hangfire queue, SignalR
builder.Services.AddTrainingPipeline();  // the pipeline job: every stage in turn
builder.Services.AddCollections();     // collections, filled by index jobs

var app = builder.Build();
if (BindingGuard.Refuses(app)) return BindingGuard.RefusedExitCode; // a public address needs an API key
if (DataFolderGuards.Refuses(app)) return DataFolderGuards.RefusedExitCode; // writable; SQLite: one server; postgres: one shared volume
app.UseServiceDefaults();

app.MapServiceApi();                   // /health/*, /api/v1/info
app.MapModelsApi();                    // /api/v1/models
app.MapInferenceApi();                 // /api/v1/tokens, embeddings, classify, segment
app.MapDatasetsApi();                  // /api/v1/datasets
app.MapJobsApi();                      // /api/v1/jobs
app.MapCollectionsApi();               // /api/v1/collections, /api/v1/models/{id}/codebook/{code}
app.MapHub<TrainingHub>("/hubs/training"); // live progress, status and log of jobs

app.Run();
return 0;

public partial class Program;
