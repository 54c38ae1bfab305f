using System.Diagnostics;
using Bridge.Testing;
using Xunit.Abstractions;
using Task = System.Threading.Tasks.Task;

namespace Bridge.Emulators.CloudTasks.Tests;

/// <summary>
/// gcloud (when installed) pointed at the emulator with the one variable the README shows: the v2beta3 track
/// (<c>gcloud beta tasks</c>) and the v2 track (<c>gcloud tasks</c>) for queues, tasks, IAM and locations. gcloud reads the error envelope, sends REST
/// camelCase update masks and an access token the emulator does not check.
/// </summary>
public sealed class GcloudTests(ITestOutputHelper output) : IDisposable
{
    private readonly string _config = Path.Combine(Path.GetTempPath(), "bridge-gcloud-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(_config))
        {
            Directory.Delete(_config, recursive: true);
        }
    }

    private static string? GcloudPath() =>
        (Environment.GetEnvironmentVariable("PATH") ?? string.Empty).Split(Path.PathSeparator)
            .Select(dir => Path.Combine(dir, "gcloud"))
            .FirstOrDefault(File.Exists);

    private async Task<(int ExitCode, string Output)> GcloudAsync(string gcloud, EmulatorHost host, params string[] args)
    {
        var start = new ProcessStartInfo(gcloud) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        start.Environment["CLOUDSDK_API_ENDPOINT_OVERRIDES_CLOUDTASKS"] = host.HttpAddress.ToString();
        start.Environment["CLOUDSDK_AUTH_ACCESS_TOKEN"] = "emulator";
        start.Environment["CLOUDSDK_CORE_PROJECT"] = "gcloud-project";
        start.Environment["CLOUDSDK_CORE_DISABLE_PROMPTS"] = "1";
        start.Environment["CLOUDSDK_CONFIG"] = _config;
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        try
        {
            await process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(90));
        }
        finally
        {
            if (!process.HasExited)
            {
                process.Kill();
            }
        }

        var text = await stdout + await stderr;
        output.WriteLine($"$ gcloud {string.Join(' ', args)}\n{text}");
        return (process.ExitCode, text);
    }

    [Fact]
    public async Task Gcloud_beta_tasks_manages_queues_tasks_and_locations()
    {
        if (GcloudPath() is not { } gcloud)
        {
            output.WriteLine("gcloud is not installed here; nothing to check.");
            return;
        }

        await using var host = await EmulatorHost.StartAsync();
        var location = "--location=us-central1";
        async Task<string> Ok(params string[] args)
        {
            var (exitCode, text) = await GcloudAsync(gcloud, host, args);
            Assert.True(exitCode == 0, $"gcloud {string.Join(' ', args)} failed: {text}");
            return text;
        }

        await Ok("beta", "tasks", "queues", "create", "gq", location);
        await Ok("beta", "tasks", "queues", "update", "gq", location, "--max-dispatches-per-second=7", "--max-attempts=5", "--min-backoff=1s", "--http-header-override=X-Env:dev", "--http-uri-override=host:example.com,port:8443");
        var described = await Ok("beta", "tasks", "queues", "describe", "gq", location);
        Assert.Contains("maxDispatchesPerSecond: 7.0", described, StringComparison.Ordinal);
        Assert.Contains("maxBurstSize: 7", described, StringComparison.Ordinal);
        Assert.Contains("maxAttempts: 5", described, StringComparison.Ordinal);
        Assert.Contains("key: X-Env", described, StringComparison.Ordinal); // gcloud sends http_target only with a URI override
        Assert.Contains("host: example.com", described, StringComparison.Ordinal);
        Assert.Contains("gq", await Ok("beta", "tasks", "queues", "list", location), StringComparison.Ordinal);
        await Ok("beta", "tasks", "queues", "pause", "gq", location);
        await Ok("beta", "tasks", "queues", "resume", "gq", location);
        await Ok("beta", "tasks", "queues", "pause", "gq", location);

        await Ok("beta", "tasks", "create-http-task", "t1", "--queue=gq", location, "--url=http://127.0.0.1:9/x");
        var duplicate = await GcloudAsync(gcloud, host, "beta", "tasks", "create-http-task", "t1", "--queue=gq", location, "--url=http://127.0.0.1:9/x");
        Assert.NotEqual(0, duplicate.ExitCode);
        Assert.Contains("ALREADY_EXISTS", duplicate.Output, StringComparison.Ordinal);
        Assert.Contains("t1", await Ok("beta", "tasks", "list", "--queue=gq", location), StringComparison.Ordinal);
        Assert.Contains("tasks/t1", await Ok("beta", "tasks", "describe", "t1", "--queue=gq", location), StringComparison.Ordinal);
        Assert.Contains("dispatchTime", await Ok("beta", "tasks", "run", "t1", "--queue=gq", location), StringComparison.Ordinal);
        await Ok("beta", "tasks", "create-http-task", "t2", "--queue=gq", location, "--url=http://127.0.0.1:9/x");
        await Ok("beta", "tasks", "delete", "t2", "--queue=gq", location);
        var missing = await GcloudAsync(gcloud, host, "beta", "tasks", "describe", "t2", "--queue=gq", location);
        Assert.Contains("NOT_FOUND", missing.Output, StringComparison.Ordinal);
        await Ok("beta", "tasks", "queues", "purge", "gq", location);

        Assert.Contains("etag", await Ok("beta", "tasks", "queues", "get-iam-policy", "gq", location), StringComparison.Ordinal);
        Assert.Contains("us-central1", await Ok("beta", "tasks", "locations", "list"), StringComparison.Ordinal);
        Assert.Contains("locationId: us-central1", await Ok("beta", "tasks", "locations", "describe", "us-central1"), StringComparison.Ordinal);

        await Ok("beta", "tasks", "queues", "delete", "gq", location);
        Assert.Contains("NOT_FOUND", (await GcloudAsync(gcloud, host, "beta", "tasks", "queues", "describe", "gq", location)).Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Gcloud_tasks_v2_manages_queues_tasks_iam_and_locations()
    {
        if (GcloudPath() is not { } gcloud)
        {
            output.WriteLine("gcloud is not installed here; nothing to check.");
            return;
        }

        await using var host = await EmulatorHost.StartAsync();
        var location = "--location=us-central1";
        async Task<string> Ok(params string[] args)
        {
            var (exitCode, text) = await GcloudAsync(gcloud, host, args);
            Assert.True(exitCode == 0, $"gcloud {string.Join(' ', args)} failed: {text}");
            return text;
        }

        await Ok("tasks", "queues", "create", "gq", location);
        await Ok("tasks", "queues", "update", "gq", location, "--max-dispatches-per-second=7", "--max-attempts=5", "--min-backoff=1s", "--max-concurrent-dispatches=3", "--routing-override=service:worker");
        var described = await Ok("tasks", "queues", "describe", "gq", location);
        Assert.Contains("maxDispatchesPerSecond: 7.0", described, StringComparison.Ordinal);
        Assert.Contains("maxBurstSize: 7", described, StringComparison.Ordinal);
        Assert.Contains("maxConcurrentDispatches: 3", described, StringComparison.Ordinal);
        Assert.Contains("maxAttempts: 5", described, StringComparison.Ordinal);
        Assert.Contains("service: worker", described, StringComparison.Ordinal);
        Assert.DoesNotContain("tombstoneTtl", described, StringComparison.Ordinal); // a v2 queue has none
        Assert.Contains("tombstoneTtl", await Ok("beta", "tasks", "queues", "describe", "gq", location), StringComparison.Ordinal); // same queue, v2beta3
        Assert.Contains("gq", await Ok("tasks", "queues", "list", location), StringComparison.Ordinal);
        await Ok("tasks", "queues", "pause", "gq", location);
        await Ok("tasks", "queues", "resume", "gq", location);
        await Ok("tasks", "queues", "pause", "gq", location);

        // apitools sends bytes in the URL-safe alphabet; ">>>???" is where the two alphabets differ.
        await Ok("tasks", "create-http-task", "t1", "--queue=gq", location, "--url=http://127.0.0.1:9/x", "--body-content=>>>???");
        var task = await host.Client.GetTaskAsync(new Bridge.CloudTasks.V2Beta3.GetTaskRequest
        {
            Name = "projects/gcloud-project/locations/us-central1/queues/gq/tasks/t1",
            ResponseView = Bridge.CloudTasks.V2Beta3.Task.Types.View.Full,
        });
        Assert.Equal(">>>???", task.HttpRequest.Body.ToStringUtf8());
        var duplicate = await GcloudAsync(gcloud, host, "tasks", "create-http-task", "t1", "--queue=gq", location, "--url=http://127.0.0.1:9/x");
        Assert.NotEqual(0, duplicate.ExitCode);
        Assert.Contains("ALREADY_EXISTS", duplicate.Output, StringComparison.Ordinal);
        Assert.Contains("t1", await Ok("tasks", "list", "--queue=gq", location), StringComparison.Ordinal);
        Assert.Contains("tasks/t1", await Ok("tasks", "describe", "t1", "--queue=gq", location), StringComparison.Ordinal);
        Assert.Contains("dispatchTime", await Ok("tasks", "run", "t1", "--queue=gq", location), StringComparison.Ordinal);
        await Ok("tasks", "create-http-task", "t2", "--queue=gq", location, "--url=http://127.0.0.1:9/x");
        await Ok("tasks", "delete", "t2", "--queue=gq", location);
        Assert.Contains("NOT_FOUND", (await GcloudAsync(gcloud, host, "tasks", "describe", "t2", "--queue=gq", location)).Output, StringComparison.Ordinal);
        await Ok("tasks", "queues", "purge", "gq", location);

        Assert.Contains("etag", await Ok("tasks", "queues", "get-iam-policy", "gq", location), StringComparison.Ordinal);
        await Ok("tasks", "queues", "add-iam-policy-binding", "gq", location, "--member=serviceAccount:a@p.iam.gserviceaccount.com", "--role=roles/cloudtasks.enqueuer");
        await Ok("beta", "tasks", "queues", "add-iam-policy-binding", "gq", location, "--member=serviceAccount:b@p.iam.gserviceaccount.com", "--role=roles/cloudtasks.enqueuer");
        var policy = await Ok("tasks", "queues", "get-iam-policy", "gq", location);
        Assert.Contains("serviceAccount:a@p.iam.gserviceaccount.com", policy, StringComparison.Ordinal);
        Assert.Contains("serviceAccount:b@p.iam.gserviceaccount.com", policy, StringComparison.Ordinal);

        Assert.Contains("us-central1", await Ok("tasks", "locations", "list"), StringComparison.Ordinal);
        Assert.Contains("locationId: us-central1", await Ok("tasks", "locations", "describe", "us-central1"), StringComparison.Ordinal);

        await Ok("tasks", "queues", "delete", "gq", location);
        Assert.Contains("NOT_FOUND", (await GcloudAsync(gcloud, host, "tasks", "queues", "describe", "gq", location)).Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Gcloud_tasks_v2_sets_updates_and_clears_the_queues_http_target()
    {
        if (GcloudPath() is not { } gcloud)
        {
            output.WriteLine("gcloud is not installed here; nothing to check.");
            return;
        }

        await using var host = await EmulatorHost.StartAsync();
        var location = "--location=us-central1";
        async Task<string> Ok(params string[] args)
        {
            var (exitCode, text) = await GcloudAsync(gcloud, host, args);
            Assert.True(exitCode == 0, $"gcloud {string.Join(' ', args)} failed: {text}");
            return text;
        }

        await Ok("tasks", "queues", "create", "hq", location, "--http-uri-override=scheme:https,host:example.com,port:8443,path:/hooks", "--http-header-override=X-Env: dev");
        var created = await Ok("tasks", "queues", "describe", "hq", location);
        Assert.Contains("httpTarget:", created, StringComparison.Ordinal);
        Assert.Contains("host: example.com", created, StringComparison.Ordinal);
        Assert.Contains("port: '8443'", created, StringComparison.Ordinal);
        Assert.Contains("path: /hooks", created, StringComparison.Ordinal);
        Assert.Contains("key: X-Env", created, StringComparison.Ordinal);

        await Ok("tasks", "queues", "update", "hq", location, "--http-oidc-service-account-email-override=worker@gcloud-project.iam.gserviceaccount.com", "--http-oidc-token-audience-override=https://example.com/hooks", "--http-header-override=X-Env: prod");
        var updated = await Ok("tasks", "queues", "describe", "hq", location);
        Assert.Contains("serviceAccountEmail: worker@gcloud-project.iam.gserviceaccount.com", updated, StringComparison.Ordinal);
        Assert.Contains("value: prod", updated, StringComparison.Ordinal);
        Assert.Contains("host: example.com", updated, StringComparison.Ordinal); // a sub-field mask leaves the rest alone
        Assert.Contains("serviceAccountEmail: worker@gcloud-project.iam.gserviceaccount.com", await Ok("beta", "tasks", "queues", "describe", "hq", location), StringComparison.Ordinal); // same queue, v2beta3

        await Ok("tasks", "queues", "update", "hq", location, "--clear-http-uri-override", "--clear-http-header-override");
        var cleared = await Ok("tasks", "queues", "describe", "hq", location);
        Assert.DoesNotContain("example.com:", cleared, StringComparison.Ordinal);
        Assert.DoesNotContain("host: example.com", cleared, StringComparison.Ordinal);
        Assert.DoesNotContain("X-Env", cleared, StringComparison.Ordinal);
        Assert.Contains("serviceAccountEmail: worker@gcloud-project.iam.gserviceaccount.com", cleared, StringComparison.Ordinal);

        await Ok("tasks", "queues", "update", "hq", location, "--clear-http-oidc-service-account-email-override", "--clear-http-oidc-token-audience-override");
        Assert.DoesNotContain("serviceAccountEmail", await Ok("tasks", "queues", "describe", "hq", location), StringComparison.Ordinal);
    }
}
