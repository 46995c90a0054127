using BeitV2.Web.Tests.Api;

namespace BeitV2.Web.Tests.Jobs;

/// <summary>The test hook the job tests hold jobs with (<see cref="BeitV2.Web.Jobs.JobHold"/>), and that it is off by default.</summary>
[Collection(JobsCollection.Name)]
public sealed class JobHoldTests
{
    private static readonly TimeSpan Timeout = Jobs.Patience;

    /// <summary>1 epoch × 8 steps, every step reported.</summary>
    private static object EightSteps => new
    {
        type = "finetune", dataset = "fashion-mnist",
        config = new { epochs = 1, batchSize = 16, maxTrainImages = 128, maxValImages = 16, reportEverySteps = 1 },
    };

    [Fact]
    public async Task HeldJob_StaysRunningAtItsStep_UntilTheFileIsDeleted()
    {
        using var host = new ApiHost(new Dictionary<string, string?> { [HeldStep.Setting] = "true" });
        using var client = host.CreateClient();
        using var hold = new HeldStep(host.DataDirectory, 4);
        var id = await Jobs.StartAsync(client, EightSteps);
        var held = await Jobs.WaitForStepAsync(client, id, hold.Step, Timeout);
        Assert.Equal(4, held.Step());

        // Time passes without progress (a job that slipped through would have moved on or finished by now).
        await Task.Delay(TimeSpan.FromSeconds(3));
        var still = await Jobs.GetAsync(client, id);
        Assert.Equal("running", still.Str("status"));
        Assert.Equal(4, still.Step());
        Assert.Equal(1, still.Int("runs"));

        hold.Release();
        var done = await Jobs.WaitAsync(client, id, Timeout, "succeeded");
        Assert.Equal(8, done.Step());
        Assert.Equal(1, done.Int("runs"));
        host.AssertNoServerErrors();
    }

    [Fact]
    public async Task WithoutTheSetting_AHoldFileHoldsNothing()
    {
        using var host = new ApiHost();
        using var client = host.CreateClient();
        using var hold = new HeldStep(host.DataDirectory, 2);
        var id = await Jobs.StartAsync(client, EightSteps);
        var done = await Jobs.WaitAsync(client, id, Timeout, "succeeded");
        Assert.Equal(8, done.Step());
        host.AssertNoServerErrors();
    }
}
