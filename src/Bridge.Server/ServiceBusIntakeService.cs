using Azure.Identity;
using Azure.Messaging.ServiceBus;
using Bridge.Core.Intake;

namespace Bridge.Server;

/// <summary>
/// Service Bus → Cloud Tasks with <c>ServiceBusProcessor</c>: peek-lock, bounded concurrency, each message settled by
/// the same decision as the function app (complete / dead-letter with reason / abandon); stopping lets in-flight
/// messages finish.
/// </summary>
public sealed partial class ServiceBusIntakeService(ServiceBusMessageHandler handler, IConfiguration configuration, ILogger<ServiceBusIntakeService> logger) : IHostedService, IAsyncDisposable
{
    private ServiceBusClient? _client;
    private ServiceBusProcessor? _processor;
    private string _entity = string.Empty;

    /// <summary>True when a connection and a queue are configured.</summary>
    public static bool IsConfigured(IConfiguration configuration) =>
        !string.IsNullOrEmpty(configuration["BridgeServiceBusQueue"])
        && (!string.IsNullOrEmpty(configuration["BridgeServiceBus:fullyQualifiedNamespace"]) || !string.IsNullOrEmpty(configuration["BridgeServiceBus"]));

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        _entity = configuration["BridgeServiceBusQueue"]!;
        var ns = configuration["BridgeServiceBus:fullyQualifiedNamespace"];
        _client = !string.IsNullOrEmpty(ns)
            ? new ServiceBusClient(ns, string.IsNullOrEmpty(configuration["BridgeServiceBus:clientId"]) ? new DefaultAzureCredential() : new ManagedIdentityCredential(ManagedIdentityId.FromUserAssignedClientId(configuration["BridgeServiceBus:clientId"])))
            : new ServiceBusClient(configuration["BridgeServiceBus"]);
        _processor = _client.CreateProcessor(_entity, new ServiceBusProcessorOptions
        {
            AutoCompleteMessages = false,
            MaxConcurrentCalls = configuration.GetValue("Bridge:ServiceBus:MaxConcurrentCalls", 8),
            ReceiveMode = ServiceBusReceiveMode.PeekLock,
        });
        _processor.ProcessMessageAsync += ProcessAsync;
        _processor.ProcessErrorAsync += args =>
        {
            LogReceiveError(args.ErrorSource.ToString(), args.Exception);
            return Task.CompletedTask;
        };
        await _processor.StartProcessingAsync(cancellationToken);
        LogStarted(_entity);
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        if (_processor is not null)
        {
            // Stops receiving and waits for the handlers under way, so no message is left half-done.
            await _processor.StopProcessingAsync(cancellationToken);
        }
    }

    /// <summary>Settles one message; public so tests drive it with messages from ServiceBusModelFactory.</summary>
    public async Task ProcessAsync(ProcessMessageEventArgs args)
    {
        ArgumentNullException.ThrowIfNull(args);
        var settlement = await handler.HandleAsync(ServiceBusMessages.ToMessageData(args.Message), _entity.Length > 0 ? _entity : configuration["BridgeServiceBusQueue"] ?? string.Empty, args.CancellationToken);
        switch (settlement.Action)
        {
            case SettlementAction.Complete:
                await args.CompleteMessageAsync(args.Message, args.CancellationToken);
                break;
            case SettlementAction.DeadLetter:
                await args.DeadLetterMessageAsync(args.Message, settlement.DeadLetterReason, settlement.DeadLetterDescription, args.CancellationToken);
                break;
            default:
                await args.AbandonMessageAsync(args.Message, cancellationToken: args.CancellationToken);
                break;
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_processor is not null)
        {
            await _processor.DisposeAsync();
        }

        if (_client is not null)
        {
            await _client.DisposeAsync();
        }
    }

    [LoggerMessage(EventId = 400, Level = LogLevel.Information, Message = "Receiving Service Bus messages from {Entity}")]
    private partial void LogStarted(string entity);

    [LoggerMessage(EventId = 401, Level = LogLevel.Warning, Message = "Service Bus receive error ({Source})")]
    private partial void LogReceiveError(string source, Exception exception);
}
