using System.Globalization;
using System.Text;
using Azure.Messaging.ServiceBus;
using Bridge.Emulators.ServiceBus;
using Bridge.Testing;
using Microsoft.Extensions.DependencyInjection;

namespace Bridge.Server.Tests;

/// <summary>
/// The one-command local run: the runner on its embedded defaults also hosts the Service Bus emulator, with the
/// <c>demo-in</c> queue feeding the <c>demo</c> route; a message sent there becomes one task and one outcome.
/// </summary>
public sealed class ServiceBusIntakeEmbeddedTests
{
    [Fact]
    public async Task On_its_embedded_defaults_the_runner_takes_a_message_sent_to_demo_in_to_one_task_and_one_delivered_outcome()
    {
        await using var server = await RunningServer.StartAsync();
        var serviceBus = EmbeddedServiceBus(server);
        Assert.NotEqual(0, serviceBus.Port);
        Assert.Contains(ServerOptions.DemoServiceBusQueue, serviceBus.Entities);
        Assert.Contains(ServerOptions.DemoHandBackQueue, serviceBus.Entities); // for func start's hand-back function

        await using var client = new ServiceBusClient(serviceBus.ConnectionString);
        await using var sender = client.CreateSender(ServerOptions.DemoServiceBusQueue);
        await sender.SendMessageAsync(new ServiceBusMessage("{\"order\":1}") { MessageId = "embedded-1", ContentType = "application/json" });

        var outcome = Assert.Single(await server.WaitForOutcomesAsync(1));
        Assert.Equal("dev.bridge.task.delivered", outcome.GetProperty("type").GetString());
        Assert.StartsWith(RunningServer.DemoQueue + "/tasks/", outcome.GetProperty("subject").GetString(), StringComparison.Ordinal);
        var data = outcome.GetProperty("data");
        Assert.Equal("embedded-1", data.GetProperty("correlationId").GetString());
        Assert.Equal("{\"order\":1}", Encoding.UTF8.GetString(Convert.FromBase64String(data.GetProperty("payload").GetString()!)));
        await using var receiver = client.CreateReceiver(ServerOptions.DemoServiceBusQueue);
        await Eventually.HoldsAsync(async () => (await receiver.PeekMessagesAsync(10, fromSequenceNumber: 0)).Count == 0, describe: () => "demo-in still holds the message: not completed.");
    }

    [Fact]
    public async Task The_embedded_Service_Bus_emulator_keeps_its_messages_next_to_the_Cloud_Tasks_data_across_a_SIGKILL()
    {
        var data = Path.Combine(Path.GetTempPath(), "bridge-server-" + Guid.NewGuid().ToString("N"));
        string[] settings = [$"--Bridge:Server:EmulatorData={data}", "--Bridge:Server:Port=0", "--Bridge:Server:EmulatorGrpcPort=0", "--Bridge:Server:ServiceBusPort=0"];
        try
        {
            long scheduled;
            using (var first = await RunnerProcess.StartAsync(settings))
            {
                Assert.NotEqual(0, first.ServiceBusPort);
                await using var client = new ServiceBusClient(BridgeServerApp.EmbeddedServiceBusConnectionString(first.ServiceBusPort));
                await using var sender = client.CreateSender(ServerOptions.DemoServiceBusQueue);
                // Due tomorrow: acknowledged and stored, not yet taken by the intake. And one the intake dead-letters.
                scheduled = await sender.ScheduleMessageAsync(new ServiceBusMessage("{\"later\":true}") { MessageId = "kept-1" }, TimeProvider.System.GetUtcNow().AddDays(1));
                await sender.SendMessageAsync(new ServiceBusMessage("{}") { MessageId = "dead-1", ApplicationProperties = { ["bridge-route"] = "no-such-route" } });
                await using var deadLetters = client.CreateReceiver(ServerOptions.DemoServiceBusQueue, new ServiceBusReceiverOptions { SubQueue = SubQueue.DeadLetter });
                await Eventually.HoldsAsync(async () => (await deadLetters.PeekMessagesAsync(10, fromSequenceNumber: 0)).Count == 1, describe: () => "the intake never dead-lettered dead-1");
                await first.KillAsync();
                Assert.Empty(first.Errors);
            }

            Assert.True(File.Exists(Path.Combine(data, "servicebus", "servicebus-emulator.db")), "no Service Bus data next to the Cloud Tasks data");
            using var second = await RunnerProcess.StartAsync(settings);
            await using (var client = new ServiceBusClient(BridgeServerApp.EmbeddedServiceBusConnectionString(second.ServiceBusPort)))
            {
                await using var queue = client.CreateReceiver(ServerOptions.DemoServiceBusQueue);
                var kept = Assert.Single(await queue.PeekMessagesAsync(10, fromSequenceNumber: 0));
                Assert.Equal(("kept-1", scheduled, ServiceBusMessageState.Scheduled), (kept.MessageId, kept.SequenceNumber, kept.State));
                await using var deadLetters = client.CreateReceiver(ServerOptions.DemoServiceBusQueue, new ServiceBusReceiverOptions { SubQueue = SubQueue.DeadLetter });
                Assert.Equal("dead-1", Assert.Single(await deadLetters.PeekMessagesAsync(10, fromSequenceNumber: 0)).MessageId);
            }

            Assert.Empty(second.Errors);
        }
        finally
        {
            Directory.Delete(data, recursive: true);
        }
    }

    [Fact]
    public async Task The_send_command_the_banner_prints_puts_a_message_on_demo_in_with_the_official_SDK()
    {
        await using var server = await RunningServer.StartAsync();
        var serviceBus = EmbeddedServiceBus(server);
        using var output = new StringWriter(CultureInfo.InvariantCulture);
        using var error = new StringWriter(CultureInfo.InvariantCulture);

        var exit = await ServiceBusSendCommand.RunAsync(["--port", serviceBus.Port.ToString(CultureInfo.InvariantCulture), "--message-id", "order-2", "{\"order\":2}"], output, error);

        Assert.True(exit == 0, error.ToString());
        Assert.Equal("sent message order-2 to demo-in", output.ToString().Trim());
        var outcome = Assert.Single(await server.WaitForOutcomesAsync(1));
        Assert.Equal("order-2", outcome.GetProperty("data").GetProperty("correlationId").GetString());
    }

    [Theory]
    [InlineData(new string[0], "send: the message BODY is missing.")]
    [InlineData(new[] { "--port", "http", "{}" }, "send: --port 'http' is not a port number.")]
    [InlineData(new[] { "--colour", "red", "{}" }, "send: unknown option --colour.")]
    [InlineData(new[] { "{}", "{}" }, "send: one BODY only; '{}' is a second one.")]
    public async Task The_send_command_names_a_usage_error_and_exits_2(string[] args, string expected)
    {
        using var output = new StringWriter(CultureInfo.InvariantCulture);
        using var error = new StringWriter(CultureInfo.InvariantCulture);

        var exit = await ServiceBusSendCommand.RunAsync(args, output, error);

        Assert.Equal(2, exit);
        Assert.StartsWith(expected + Environment.NewLine + "usage: send ", error.ToString(), StringComparison.Ordinal);
        Assert.Empty(output.ToString());
    }

    [Fact]
    public async Task A_Service_Bus_connection_of_the_users_own_turns_the_embedded_endpoint_off()
    {
        // No intake queue: nothing connects to the user's namespace in this test.
        await using var server = await RunningServer.StartAsync("--BridgeServiceBus=Endpoint=sb://localhost:1;SharedAccessKeyName=k;SharedAccessKey=v;UseDevelopmentEmulator=true;");

        Assert.Null(server.Services.GetService<ServiceBusEmulatorHost>());
    }

    private static ServiceBusEmulator EmbeddedServiceBus(RunningServer server) =>
        server.Services.GetRequiredService<ServiceBusEmulatorHost>().Emulator ?? throw new InvalidOperationException("The embedded Service Bus emulator has not started.");
}
