using System.Net;
using System.Text.RegularExpressions;
using Azure.Messaging.ServiceBus;
using Bridge.CloudTasks;
using Bridge.CloudTasks.V2Beta3;
using Bridge.Testing;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Microsoft.Playwright;
using static Bridge.Dashboard.Tests.BrowserTests;
using static Microsoft.Playwright.Assertions;
using CloudTask = Bridge.CloudTasks.V2Beta3.Task;
using TaskHttpMethod = Bridge.CloudTasks.V2Beta3.HttpMethod;
using Task = System.Threading.Tasks.Task;

namespace Bridge.Dashboard.Tests;

/// <summary>
/// Each standalone emulator's executable serves its own part of the dashboard: a real process on ports bound as 0, a
/// real chromium clicking, the official Service Bus client and the Bridge Cloud Tasks client as peers.
/// </summary>
[Collection(BrowserCollection.Name)]
public sealed partial class StandaloneEmulatorTests(Browser browser)
{
    private const string Jobs = "projects/local-project/locations/local/queues/jobs";

    [Fact]
    public async Task The_cloud_tasks_emulator_serves_its_queues_and_tasks_at_the_root_of_its_http_port()
    {
        using var emulator = await EmulatorExecutable.StartAsync("Bridge.Emulators.CloudTasks.dll",
            ["--port", "0", "--http-port", "0", "--queues", "local-project/local/jobs"], GrpcLine(), DashboardLine());
        var (grpc, dashboard) = (emulator.Values[0], emulator.Values[1].TrimEnd('/'));
        using var client = new CloudTasksClientBuilder { EmulatorHost = grpc, EmulatorDetection = EmulatorDetection.None }.Build();
        var later = Timestamp.FromDateTimeOffset(TimeProvider.System.GetUtcNow().AddHours(1));
        var ping = await client.CreateTaskAsync(new CreateTaskRequest
        {
            Parent = Jobs,
            Task = new CloudTask { Name = $"{Jobs}/tasks/ping", ScheduleTime = later, HttpRequest = new HttpRequest { Url = $"{dashboard}/health", HttpMethod = TaskHttpMethod.Get } },
        });
        await client.CreateTaskAsync(new CreateTaskRequest
        {
            Parent = Jobs,
            Task = new CloudTask { Name = $"{Jobs}/tasks/report", ScheduleTime = later, HttpRequest = new HttpRequest { Url = $"{dashboard}/health", HttpMethod = TaskHttpMethod.Post, Body = ByteString.CopyFromUtf8("{\"report\":42}") } },
        });

        var page = await browser.NewPageAsync();
        await page.GotoAsync(dashboard + "/");
        await Expect(page.GetByRole(AriaRole.Heading, new() { Name = "Queues", Level = 1 })).ToBeVisibleAsync();
        await Expect(page.GetByRole(AriaRole.Navigation)).Not.ToContainTextAsync("Outcomes");
        var row = Row(page, "jobs");
        await Expect(row).ToContainTextAsync("Running");
        await AssertAccessibleAsync(page);

        await row.GetByRole(AriaRole.Button, new() { Name = "Pause queue jobs" }).ClickAsync();
        await Expect(page.GetByRole(AriaRole.Status)).ToContainTextAsync("The queue is paused");
        await Expect(Row(page, "jobs")).ToContainTextAsync("Paused");
        Assert.Equal(Queue.Types.State.Paused, (await client.GetQueueAsync(new GetQueueRequest { Name = Jobs })).State);
        await Row(page, "jobs").GetByRole(AriaRole.Button, new() { Name = "Resume queue jobs" }).ClickAsync();
        await Expect(Row(page, "jobs")).ToContainTextAsync("Running");

        // The tasks, the body only on request, delete.
        await Row(page, "jobs").GetByRole(AriaRole.Link, new() { Name = "jobs", Exact = true }).ClickAsync();
        await Expect(page.GetByRole(AriaRole.Heading, new() { Name = "Queue jobs" })).ToBeVisibleAsync();
        await Expect(page.Locator("tbody tr")).ToHaveCountAsync(2);
        await AssertAccessibleAsync(page);
        await page.GetByRole(AriaRole.Link, new() { Name = "report" }).ClickAsync();
        await Expect(page.Locator("pre")).ToHaveCountAsync(0);
        await page.GetByRole(AriaRole.Link, new() { Name = "Show the body" }).ClickAsync();
        await Expect(page.Locator("pre")).ToHaveTextAsync("{\"report\":42}");
        await AssertAccessibleAsync(page);
        await page.GetByRole(AriaRole.Button, new() { Name = "Delete" }).ClickAsync();
        await Expect(page.GetByRole(AriaRole.Status)).ToContainTextAsync("The task was deleted.");
        await Expect(page.Locator("tbody tr")).ToHaveCountAsync(1);

        // Run now: dispatched at once (GET /health answers 200), so the task is done and gone.
        await page.GetByRole(AriaRole.Button, new() { Name = "Run now: task ping" }).ClickAsync();
        await Expect(page.GetByRole(AriaRole.Status)).ToContainTextAsync("sent for dispatch");
        using (var http = new HttpClient())
        using (var idle = await http.PostAsync($"{dashboard}/admin/wait-idle?queue={Uri.EscapeDataString(Jobs)}&timeoutSeconds=60", null))
        {
            Assert.Equal(HttpStatusCode.NoContent, idle.StatusCode);
        }

        await page.ReloadAsync();
        await Expect(page.GetByText("No tasks in this queue.")).ToBeVisibleAsync();
        var gone = await Assert.ThrowsAsync<CloudTasksException>(() => client.GetTaskAsync(new GetTaskRequest { Name = ping.Name }));
        Assert.Equal(CloudTasksFailureReason.NotFound, gone.Reason);

        // Purge asks first.
        await client.CreateTaskAsync(new CreateTaskRequest { Parent = Jobs, Task = new CloudTask { ScheduleTime = later, HttpRequest = new HttpRequest { Url = $"{dashboard}/health", HttpMethod = TaskHttpMethod.Get } } });
        await page.GotoAsync(dashboard + "/");
        await Row(page, "jobs").GetByRole(AriaRole.Link, new() { Name = "Purge queue jobs" }).ClickAsync();
        await Expect(page.GetByRole(AriaRole.Heading, new() { Name = "Purge queue jobs?" })).ToBeVisibleAsync();
        await AssertAccessibleAsync(page);
        await page.GetByRole(AriaRole.Button, new() { Name = "Purge jobs" }).ClickAsync();
        await Expect(page.GetByRole(AriaRole.Status)).ToContainTextAsync("purged");
        await Eventually.HoldsAsync(async () => !await client.ListTasks(new ListTasksRequest { Parent = Jobs }).AnyAsync());
    }

    [Fact]
    public async Task The_cloud_tasks_emulators_dashboard_refuses_a_request_naming_another_host()
    {
        using var emulator = await EmulatorExecutable.StartAsync("Bridge.Emulators.CloudTasks.dll", ["--port", "0", "--http-port", "0"], GrpcLine(), DashboardLine());
        var port = new Uri(emulator.Values[1]).Port;
        using var http = new HttpClient();
        using var request = new HttpRequestMessage(System.Net.Http.HttpMethod.Get, $"http://127.0.0.1:{port}/");
        request.Headers.Host = "attacker.example";

        using var refused = await http.SendAsync(request);
        using var served = await http.GetAsync($"http://127.0.0.1:{port}/");

        Assert.Equal(HttpStatusCode.Forbidden, refused.StatusCode);
        Assert.Equal(HttpStatusCode.OK, served.StatusCode);
        Assert.Contains("No queues yet", await served.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_service_bus_emulator_serves_exact_counts_and_its_dead_letters_on_its_own_http_port()
    {
        var config = Path.Combine(Path.GetTempPath(), $"sb-config-{Guid.NewGuid():N}.json");
        await File.WriteAllTextAsync(config, """
            {"UserConfig":{"Namespaces":[{"Name":"sbemulatorns",
              "Queues":[{"Name":"orders","Properties":{"MaxDeliveryCount":5}}],
              "Topics":[{"Name":"events","Properties":{},"Subscriptions":[{"Name":"audit","Properties":{}}]}]}],
              "Logging":{"Type":"File"}}}
            """);
        try
        {
            using var emulator = await EmulatorExecutable.StartAsync("Bridge.Emulators.ServiceBus.dll",
                ["--port", "0", "--http-port", "0", "--config", config], DashboardLine(), ConnectionLine());
            var (dashboard, connection) = (emulator.Values[0].TrimEnd('/'), emulator.Values[1]);
            await using var client = new ServiceBusClient(connection);
            await using var sender = client.CreateSender("orders");

            // More than the 250 a peek would count: the broker's count is exact.
            const int active = 300;
            var batch = await sender.CreateMessageBatchAsync();
            for (var i = 0; i < active + 1; i++)
            {
                Assert.True(batch.TryAddMessage(new ServiceBusMessage($"{{\"n\":{i}}}") { MessageId = $"order-{i}" }));
            }

            await sender.SendMessagesAsync(batch);
            batch.Dispose();
            await sender.ScheduleMessageAsync(new ServiceBusMessage("later"), TimeProvider.System.GetUtcNow().AddHours(1));
            await using (var receiver = client.CreateReceiver("orders"))
            {
                var first = await receiver.ReceiveMessageAsync(TimeSpan.FromSeconds(30));
                Assert.NotNull(first);
                await receiver.DeadLetterMessageAsync(first, "Unreadable", "made by the test");
            }

            await using (var topic = client.CreateSender("events"))
            {
                await topic.ScheduleMessageAsync(new ServiceBusMessage("later"), TimeProvider.System.GetUtcNow().AddHours(1));
            }

            var page = await browser.NewPageAsync();
            await page.GotoAsync(dashboard + "/");
            await Expect(page.GetByRole(AriaRole.Heading, new() { Name = "Service Bus", Level = 1 })).ToBeVisibleAsync();
            var orders = Row(page, "orders");
            await Expect(orders.Locator("td")).ToHaveTextAsync(["300", "1", "1"]);
            await Expect(page.GetByText("Counts are exact")).ToBeVisibleAsync();
            await Expect(Row(page, "events/subscriptions/audit").Locator("td")).ToHaveTextAsync(["0", "0", "0"]);
            await Expect(page.Locator("table", new() { HasText = "Topics" }).Locator("tbody tr td")).ToHaveTextAsync(["1", "1"]);
            await Expect(page.GetByRole(AriaRole.Navigation)).Not.ToContainTextAsync("Queues");
            await AssertAccessibleAsync(page);

            await orders.GetByRole(AriaRole.Link, new() { Name = "1 dead-lettered in orders" }).ClickAsync();
            var letter = page.Locator("tbody tr", new() { HasText = "order-0" });
            await Expect(letter).ToContainTextAsync("Unreadable");
            await AssertAccessibleAsync(page);
            await letter.GetByRole(AriaRole.Button, new() { Name = "Resubmit" }).ClickAsync();
            await Expect(page.GetByRole(AriaRole.Status)).ToContainTextAsync("sent again");
            await Expect(page.GetByText("No dead-lettered messages")).ToBeVisibleAsync();

            await page.GotoAsync(dashboard + "/servicebus");
            await Expect(Row(page, "orders").Locator("td")).ToHaveTextAsync(["301", "1", "0"]);
        }
        finally
        {
            File.Delete(config);
        }
    }

    [GeneratedRegex(@"^\s*gRPC:\s+(\S+:\d+)")]
    private static partial Regex GrpcLine();

    [GeneratedRegex(@"^\s*dashboard:\s+(http://localhost:\d+/)")]
    private static partial Regex DashboardLine();

    [GeneratedRegex(@"^\s*connection string:\s+(\S+)")]
    private static partial Regex ConnectionLine();
}
