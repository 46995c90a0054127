using BeitV2.Web.Infrastructure;
namespace BeitV2.Web.Hosting;

public static class StorageRegistration
{
    /// <summary>
    /// The disk budget of uploads (free space, quota) and the start-up sweep of leftovers. Call it before
    /// the other areas: hosted services start in registration order, so the sweep ends before training resumes.
    /// </summary>
    public static IServiceCollection AddStorageLimits(this IServiceCollection services) => services
        .AddDataFolderGuards()   // Program checks the data folder before the host starts (DataFolderGuards.Refuses)
        .AddHostedService<LeftoverSweep>()
        .AddSingleton<IFreeSpaceProbe, DriveFreeSpaceProbe>()
        .AddSingleton<StorageBudget>();
}
