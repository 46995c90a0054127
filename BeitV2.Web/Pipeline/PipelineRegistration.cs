using BeitV2.Web.Jobs;

namespace BeitV2.Web.Pipeline;

public static class PipelineRegistration
{
    /// <summary>The pipeline (needs <see cref="JobsRegistration.AddTrainingJobs"/>) and the <c>pipeline</c> jobs it runs.</summary>
    public static IServiceCollection AddTrainingPipeline(this IServiceCollection services)
    {
        services.AddSingleton<PipelineRunner>();
        services.AddSingleton<IPipelineJobs, PipelineJobs>();
        return services;
    }
}
