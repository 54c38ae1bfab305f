using System.Globalization;
using Azure.Messaging.ServiceBus;

namespace Bridge.Server;

/// <summary>
/// <c>send</c>: puts one message on a Service Bus queue with the official SDK, so the one-command local run can be tried
/// with nothing else installed. Defaults: the runner's embedded Service Bus endpoint and its <c>demo-in</c> queue.
/// </summary>
public static class ServiceBusSendCommand
{
    public const string Name = "send";

    private const string Usage =
        "usage: send [--queue demo-in] [--message-id ID] [--port 5672 | --connection STRING] [--property name=value]... BODY";

    private const int MaxBodyBytes = Bridge.Emulators.ServiceBus.ServiceBusEmulatorOptions.DefaultMaxMessageSizeBytes;

    /// <summary>Sends and says what was sent; 2 for a usage error, 1 when the send fails, 0 when it was acknowledged.</summary>
    public static async Task<int> RunAsync(IReadOnlyList<string> args, TextWriter output, TextWriter error, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(args);
        ArgumentNullException.ThrowIfNull(output);
        ArgumentNullException.ThrowIfNull(error);
        string queue = ServerOptions.DemoServiceBusQueue, messageId = Guid.NewGuid().ToString("N"), connection = string.Empty;
        var port = ServerOptions.DefaultServiceBusPort;
        string? body = null;
        var properties = new Dictionary<string, object>(StringComparer.Ordinal);
        for (var i = 0; i < args.Count; i++)
        {
            var arg = args[i];
            if (!arg.StartsWith("--", StringComparison.Ordinal))
            {
                if (body is not null)
                {
                    return Fail(error, $"send: one BODY only; '{arg}' is a second one.");
                }

                body = arg;
                continue;
            }

            if (i + 1 >= args.Count)
            {
                return Fail(error, $"send: {arg} needs a value.");
            }

            var value = args[++i];
            switch (arg)
            {
                case "--queue":
                    queue = value;
                    break;
                case "--message-id":
                    messageId = value;
                    break;
                case "--connection":
                    connection = value;
                    break;
                case "--port" when int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var p) && p is > 0 and <= 65535:
                    port = p;
                    break;
                case "--port":
                    return Fail(error, $"send: --port '{value}' is not a port number.");
                case "--property" when value.IndexOf('=', StringComparison.Ordinal) is > 0 and var at:
                    properties[value[..at]] = value[(at + 1)..];
                    break;
                case "--property":
                    return Fail(error, $"send: --property '{value}' is not name=value.");
                default:
                    return Fail(error, $"send: unknown option {arg}.");
            }
        }

        if (body is null)
        {
            return Fail(error, "send: the message BODY is missing.");
        }

        if (System.Text.Encoding.UTF8.GetByteCount(body) > MaxBodyBytes)
        {
            return Fail(error, $"send: the body is larger than {MaxBodyBytes} bytes.");
        }

        if (string.IsNullOrEmpty(connection))
        {
            connection = BridgeServerApp.EmbeddedServiceBusConnectionString(port);
        }

        var message = new ServiceBusMessage(body) { MessageId = messageId, ContentType = LooksLikeJson(body) ? "application/json" : "text/plain" };
        foreach (var (name, value) in properties)
        {
            message.ApplicationProperties[name] = value;
        }

        try
        {
            await using var client = new ServiceBusClient(connection, new ServiceBusClientOptions
            {
                RetryOptions = new ServiceBusRetryOptions { MaxRetries = 1, TryTimeout = TimeSpan.FromSeconds(10) },
            });
            await using var sender = client.CreateSender(queue);
            await sender.SendMessageAsync(message, cancellationToken);
        }
        catch (Exception ex) when (ex is ServiceBusException or UnauthorizedAccessException or FormatException or ArgumentException or TimeoutException or System.Net.Sockets.SocketException)
        {
            // One line naming what failed; never the connection string (it holds the key).
            await error.WriteLineAsync($"send: could not send to '{queue}': {ex.Message.Split('\n')[0].Trim()}");
            return 1;
        }

        await output.WriteLineAsync($"sent message {messageId} to {queue}");
        return 0;
    }

    private static bool LooksLikeJson(string body) => body.TrimStart() is ['{', ..] or ['[', ..];

    private static int Fail(TextWriter error, string message)
    {
        error.WriteLine(message);
        error.WriteLine(Usage);
        return 2;
    }
}
