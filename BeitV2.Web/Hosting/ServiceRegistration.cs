using BeitV2.Web.Inference;
using BeitV2.Web.Infrastructure;
using BeitV2.Web.Registry;

namespace BeitV2.Web.Hosting;

public static class ServiceRegistration
{
    public static IServiceCollection AddModelRegistry(this IServiceCollection services) => services
        .AddSingleton<DataDirectory>()
        .AddSingleton<ModelRegistry>()
        .AddSingleton<ImportGate>()
        .AddSingleton<LabelStore>();

    public static IServiceCollection AddInference(this IServiceCollection services) => services
        .AddSingleton<ModelHost>()
        .AddSingleton<UploadedImageReader>()
        .AddSingleton<DecodeBudget>()
        .AddSingleton<ArrivingRequests>()
        .AddSingleton<InferenceService>()
        .AddHostedService<ModelWarmup>();
}
