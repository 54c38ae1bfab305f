using System.Net;
using Bridge.CloudTasks;
using Bridge.Testing;

namespace Bridge.Server.Tests;

/// <summary>A runner pointed at an emulator it does not host.</summary>
public sealed class ExternalEmulatorTests
{
    [Fact]
    public async Task CLOUD_TASKS_EMULATOR_HOST_points_the_runner_at_that_emulator_not_at_production()
    {
        await using var emulator = await EmulatorHost.StartAsync();
        var queue = await emulator.CreateQueueAsync();
        await emulator.Client.PauseQueueAsync(queue); // CreateQueue takes no state: paused, the task stays to be listed
        await using var server = await RunningServer.StartAsync(
            "--" + CloudTasksClient.EmulatorHostEnvironmentVariable + "=" + emulator.GrpcHostPort,
            "--Bridge:Routes:orders:Queue=" + queue,
            "--Bridge:Routes:orders:TargetUrl=https://worker.example.com/x",
            "--Bridge:Callback:PublicUrl=https://bridge.example.com/api/tasks/callback",
            "--Bridge:Callback:AllowedServiceAccounts:0=a@p.iam.gserviceaccount.com");

        using var response = await server.PostEventAsync("{}", "external-1", route: "orders");

        Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
        var tasks = new List<Bridge.CloudTasks.V2Beta3.Task>();
        await foreach (var task in emulator.Client.ListTasks(queue))
        {
            tasks.Add(task);
        }

        Assert.Single(tasks);
    }
}
