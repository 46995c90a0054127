namespace BeitV2.Web.Jobs;

/// <summary>
/// Test seams of <see cref="JobRunner"/> (registered only by tests): a hook can hold or stop a run at a
/// crash point the way a killed process would, without racing the trainer.
/// </summary>
public sealed class JobRunnerHooks
{
    /// <summary>Called with (job id, model id) after the output model is registered and before the job is marked finished.</summary>
    public Action<string, string>? AfterOutputRegistered { get; init; }
}
