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

    /// <summary>An in-process emulator and gcloud pointed at it; null (and a note in the output) where gcloud is not installed.</summary>
    private async Task<GcloudSession?> StartSessionAsync()
    {
        if (GcloudPath() is not { } gcloud)
        {
            output.WriteLine("gcloud is not installed here; nothing to check.");
            return null;
        }

        return new GcloudSession(gcloud, await EmulatorHost.StartAsync(), _config, output);
    }

    private sealed class GcloudSession(string gcloud, EmulatorHost host, string config, ITestOutputHelper output) : IAsyncDisposable
    {
        public EmulatorHost Host => host;

        public async Task<(int ExitCode, string Output)> RunAsync(params string[] args)
        {
            var start = new ProcessStartInfo(gcloud);
            foreach (var arg in args)
            {
                start.ArgumentList.Add(arg);
            }

            start.Environment["CLOUDSDK_API_ENDPOINT_OVERRIDES_CLOUDTASKS"] = host.HttpAddress.ToString();
            start.Environment["CLOUDSDK_AUTH_ACCESS_TOKEN"] = "emulator";
            start.Environment["CLOUDSDK_CORE_PROJECT"] = "gcloud-project";
            start.Environment["CLOUDSDK_CORE_DISABLE_PROMPTS"] = "1";
            start.Environment["CLOUDSDK_CONFIG"] = config;
            var exited = await ChildProcess.RunToExitAsync(start, TimeSpan.FromSeconds(90));
            var text = exited.Stdout + exited.Stderr;
            output.WriteLine($"$ gcloud {string.Join(' ', args)}\n{text}");
            return (exited.ExitCode, text);
        }

        /// <summary>Runs gcloud, asserts it succeeded and returns what it wrote.</summary>
        public async Task<string> OkAsync(params string[] args)
        {
            var (exitCode, text) = await RunAsync(args);
            Assert.True(exitCode == 0, $"gcloud {string.Join(' ', args)} failed: {text}");
            return text;
        }

        public ValueTask DisposeAsync() => host.DisposeAsync();
    }

    [Fact]
    public async Task Gcloud_beta_tasks_manages_queues_tasks_and_locations()
    {
        await using var gcloud = await StartSessionAsync();
        if (gcloud is null)
        {
            return;
        }

        var location = "--location=us-central1";

        await gcloud.OkAsync("beta", "tasks", "queues", "create", "gq", location);
        await gcloud.OkAsync("beta", "tasks", "queues", "update", "gq", location, "--max-dispatches-per-second=7", "--max-attempts=5", "--min-backoff=1s", "--http-header-override=X-Env:dev", "--http-uri-override=host:example.com,port:8443");
        var described = await gcloud.OkAsync("beta", "tasks", "queues", "describe", "gq", location);
        Assert.Contains("maxDispatchesPerSecond: 7.0", described, StringComparison.Ordinal);
        Assert.Contains("maxBurstSize: 7", described, StringComparison.Ordinal);
        Assert.Contains("maxAttempts: 5", described, StringComparison.Ordinal);
        Assert.Contains("key: X-Env", described, StringComparison.Ordinal); // gcloud sends http_target only with a URI override
        Assert.Contains("host: example.com", described, StringComparison.Ordinal);
        Assert.Contains("gq", await gcloud.OkAsync("beta", "tasks", "queues", "list", location), StringComparison.Ordinal);
        await gcloud.OkAsync("beta", "tasks", "queues", "pause", "gq", location);
        await gcloud.OkAsync("beta", "tasks", "queues", "resume", "gq", location);
        await gcloud.OkAsync("beta", "tasks", "queues", "pause", "gq", location);

        await gcloud.OkAsync("beta", "tasks", "create-http-task", "t1", "--queue=gq", location, "--url=http://127.0.0.1:9/x");
        var duplicate = await gcloud.RunAsync("beta", "tasks", "create-http-task", "t1", "--queue=gq", location, "--url=http://127.0.0.1:9/x");
        Assert.NotEqual(0, duplicate.ExitCode);
        Assert.Contains("ALREADY_EXISTS", duplicate.Output, StringComparison.Ordinal);
        Assert.Contains("t1", await gcloud.OkAsync("beta", "tasks", "list", "--queue=gq", location), StringComparison.Ordinal);
        Assert.Contains("tasks/t1", await gcloud.OkAsync("beta", "tasks", "describe", "t1", "--queue=gq", location), StringComparison.Ordinal);
        Assert.Contains("dispatchTime", await gcloud.OkAsync("beta", "tasks", "run", "t1", "--queue=gq", location), StringComparison.Ordinal);
        await gcloud.OkAsync("beta", "tasks", "create-http-task", "t2", "--queue=gq", location, "--url=http://127.0.0.1:9/x");
        await gcloud.OkAsync("beta", "tasks", "delete", "t2", "--queue=gq", location);
        var missing = await gcloud.RunAsync("beta", "tasks", "describe", "t2", "--queue=gq", location);
        Assert.Contains("NOT_FOUND", missing.Output, StringComparison.Ordinal);
        await gcloud.OkAsync("beta", "tasks", "queues", "purge", "gq", location);

        Assert.Contains("etag", await gcloud.OkAsync("beta", "tasks", "queues", "get-iam-policy", "gq", location), StringComparison.Ordinal);
        Assert.Contains("us-central1", await gcloud.OkAsync("beta", "tasks", "locations", "list"), StringComparison.Ordinal);
        Assert.Contains("locationId: us-central1", await gcloud.OkAsync("beta", "tasks", "locations", "describe", "us-central1"), StringComparison.Ordinal);

        await gcloud.OkAsync("beta", "tasks", "queues", "delete", "gq", location);
        Assert.Contains("NOT_FOUND", (await gcloud.RunAsync("beta", "tasks", "queues", "describe", "gq", location)).Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Gcloud_tasks_v2_manages_queues_tasks_iam_and_locations()
    {
        await using var gcloud = await StartSessionAsync();
        if (gcloud is null)
        {
            return;
        }

        var location = "--location=us-central1";

        await gcloud.OkAsync("tasks", "queues", "create", "gq", location);
        await gcloud.OkAsync("tasks", "queues", "update", "gq", location, "--max-dispatches-per-second=7", "--max-attempts=5", "--min-backoff=1s", "--max-concurrent-dispatches=3", "--routing-override=service:worker");
        var described = await gcloud.OkAsync("tasks", "queues", "describe", "gq", location);
        Assert.Contains("maxDispatchesPerSecond: 7.0", described, StringComparison.Ordinal);
        Assert.Contains("maxBurstSize: 7", described, StringComparison.Ordinal);
        Assert.Contains("maxConcurrentDispatches: 3", described, StringComparison.Ordinal);
        Assert.Contains("maxAttempts: 5", described, StringComparison.Ordinal);
        Assert.Contains("service: worker", described, StringComparison.Ordinal);
        Assert.DoesNotContain("tombstoneTtl", described, StringComparison.Ordinal); // a v2 queue has none
        Assert.Contains("tombstoneTtl", await gcloud.OkAsync("beta", "tasks", "queues", "describe", "gq", location), StringComparison.Ordinal); // same queue, v2beta3
        Assert.Contains("gq", await gcloud.OkAsync("tasks", "queues", "list", location), StringComparison.Ordinal);
        await gcloud.OkAsync("tasks", "queues", "pause", "gq", location);
        await gcloud.OkAsync("tasks", "queues", "resume", "gq", location);
        await gcloud.OkAsync("tasks", "queues", "pause", "gq", location);

        // apitools sends bytes in the URL-safe alphabet; ">>>???" is where the two alphabets differ.
        await gcloud.OkAsync("tasks", "create-http-task", "t1", "--queue=gq", location, "--url=http://127.0.0.1:9/x", "--body-content=>>>???");
        var task = await gcloud.Host.Client.GetTaskAsync(new Bridge.CloudTasks.V2Beta3.GetTaskRequest
        {
            Name = "projects/gcloud-project/locations/us-central1/queues/gq/tasks/t1",
            ResponseView = Bridge.CloudTasks.V2Beta3.Task.Types.View.Full,
        });
        Assert.Equal(">>>???", task.HttpRequest.Body.ToStringUtf8());
        var duplicate = await gcloud.RunAsync("tasks", "create-http-task", "t1", "--queue=gq", location, "--url=http://127.0.0.1:9/x");
        Assert.NotEqual(0, duplicate.ExitCode);
        Assert.Contains("ALREADY_EXISTS", duplicate.Output, StringComparison.Ordinal);
        Assert.Contains("t1", await gcloud.OkAsync("tasks", "list", "--queue=gq", location), StringComparison.Ordinal);
        Assert.Contains("tasks/t1", await gcloud.OkAsync("tasks", "describe", "t1", "--queue=gq", location), StringComparison.Ordinal);
        Assert.Contains("dispatchTime", await gcloud.OkAsync("tasks", "run", "t1", "--queue=gq", location), StringComparison.Ordinal);
        await gcloud.OkAsync("tasks", "create-http-task", "t2", "--queue=gq", location, "--url=http://127.0.0.1:9/x");
        await gcloud.OkAsync("tasks", "delete", "t2", "--queue=gq", location);
        Assert.Contains("NOT_FOUND", (await gcloud.RunAsync("tasks", "describe", "t2", "--queue=gq", location)).Output, StringComparison.Ordinal);
        await gcloud.OkAsync("tasks", "queues", "purge", "gq", location);

        Assert.Contains("etag", await gcloud.OkAsync("tasks", "queues", "get-iam-policy", "gq", location), StringComparison.Ordinal);
        await gcloud.OkAsync("tasks", "queues", "add-iam-policy-binding", "gq", location, "--member=serviceAccount:a@p.iam.gserviceaccount.com", "--role=roles/cloudtasks.enqueuer");
        await gcloud.OkAsync("beta", "tasks", "queues", "add-iam-policy-binding", "gq", location, "--member=serviceAccount:b@p.iam.gserviceaccount.com", "--role=roles/cloudtasks.enqueuer");
        var policy = await gcloud.OkAsync("tasks", "queues", "get-iam-policy", "gq", location);
        Assert.Contains("serviceAccount:a@p.iam.gserviceaccount.com", policy, StringComparison.Ordinal);
        Assert.Contains("serviceAccount:b@p.iam.gserviceaccount.com", policy, StringComparison.Ordinal);

        Assert.Contains("us-central1", await gcloud.OkAsync("tasks", "locations", "list"), StringComparison.Ordinal);
        Assert.Contains("locationId: us-central1", await gcloud.OkAsync("tasks", "locations", "describe", "us-central1"), StringComparison.Ordinal);

        await gcloud.OkAsync("tasks", "queues", "delete", "gq", location);
        Assert.Contains("NOT_FOUND", (await gcloud.RunAsync("tasks", "queues", "describe", "gq", location)).Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Gcloud_tasks_v2_sets_updates_and_clears_the_queues_http_target()
    {
        await using var gcloud = await StartSessionAsync();
        if (gcloud is null)
        {
            return;
        }

        var location = "--location=us-central1";

        await gcloud.OkAsync("tasks", "queues", "create", "hq", location, "--http-uri-override=scheme:https,host:example.com,port:8443,path:/hooks", "--http-header-override=X-Env: dev");
        var created = await gcloud.OkAsync("tasks", "queues", "describe", "hq", location);
        Assert.Contains("httpTarget:", created, StringComparison.Ordinal);
        Assert.Contains("host: example.com", created, StringComparison.Ordinal);
        Assert.Contains("port: '8443'", created, StringComparison.Ordinal);
        Assert.Contains("path: /hooks", created, StringComparison.Ordinal);
        Assert.Contains("key: X-Env", created, StringComparison.Ordinal);

        await gcloud.OkAsync("tasks", "queues", "update", "hq", location, "--http-oidc-service-account-email-override=worker@gcloud-project.iam.gserviceaccount.com", "--http-oidc-token-audience-override=https://example.com/hooks", "--http-header-override=X-Env: prod");
        var updated = await gcloud.OkAsync("tasks", "queues", "describe", "hq", location);
        Assert.Contains("serviceAccountEmail: worker@gcloud-project.iam.gserviceaccount.com", updated, StringComparison.Ordinal);
        Assert.Contains("value: prod", updated, StringComparison.Ordinal);
        Assert.Contains("host: example.com", updated, StringComparison.Ordinal); // a sub-field mask leaves the rest alone
        Assert.Contains("serviceAccountEmail: worker@gcloud-project.iam.gserviceaccount.com", await gcloud.OkAsync("beta", "tasks", "queues", "describe", "hq", location), StringComparison.Ordinal); // same queue, v2beta3

        await gcloud.OkAsync("tasks", "queues", "update", "hq", location, "--clear-http-uri-override", "--clear-http-header-override");
        var cleared = await gcloud.OkAsync("tasks", "queues", "describe", "hq", location);
        Assert.DoesNotContain("example.com:", cleared, StringComparison.Ordinal);
        Assert.DoesNotContain("host: example.com", cleared, StringComparison.Ordinal);
        Assert.DoesNotContain("X-Env", cleared, StringComparison.Ordinal);
        Assert.Contains("serviceAccountEmail: worker@gcloud-project.iam.gserviceaccount.com", cleared, StringComparison.Ordinal);

        await gcloud.OkAsync("tasks", "queues", "update", "hq", location, "--clear-http-oidc-service-account-email-override", "--clear-http-oidc-token-audience-override");
        Assert.DoesNotContain("serviceAccountEmail", await gcloud.OkAsync("tasks", "queues", "describe", "hq", location), StringComparison.Ordinal);
    }
}
