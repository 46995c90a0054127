using BeitV2.Web.Jobs;

namespace BeitV2.Web.Collections;

public static class CollectionsRegistration
{
    /// <summary>Collections (needs <see cref="JobsRegistration.AddTrainingJobs"/> and the inference services) and the <c>index</c> jobs that fill them.</summary>
    public static IServiceCollection AddCollections(this IServiceCollection services) => services
        .AddSingleton<CollectionStore>()
        .AddSingleton<DatasetItems>()
        .AddSingleton<CollectionEmbedder>()
        .AddSingleton<CollectionPictures>()
        .AddSingleton<CollectionCodes>()
        .AddSingleton<CollectionService>()
        .AddSingleton<IIndexJobs, IndexJobs>();
}
