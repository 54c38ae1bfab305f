using Azure.Messaging.ServiceBus;
using Bridge.Core.Forwarding;
using Bridge.Core.Internal;

namespace Bridge.Core.Intake;

/// <summary>What to do with a Service Bus message after forwarding it.</summary>
public enum SettlementAction
{
    /// <summary>The task exists (created or deduplicated): remove the message.</summary>
    Complete,

    /// <summary>Permanent failure: move to the dead-letter queue with the reason.</summary>
    DeadLetter,

    /// <summary>Transient failure: release the lock so Service Bus redelivers (and dead-letters after MaxDeliveryCount).</summary>
    Abandon,
}

public sealed record Settlement(SettlementAction Action, ForwardResult? Result = null, ForwardingException? Error = null)
{
    public const int MaxDeadLetterTextLength = 4096;

    public string? DeadLetterReason => Error?.ReasonCode;

    public string? DeadLetterDescription => Error?.Message is { } m && m.Length > MaxDeadLetterTextLength ? m[..MaxDeadLetterTextLength] : Error?.Message;
}

/// <summary>
/// How a host settles the one message it holds. The function app implements it over <c>ServiceBusMessageActions</c>,
/// the runner over <c>ProcessMessageEventArgs</c>; the decision itself is <see cref="ServiceBusMessageHandler"/>'s.
/// </summary>
public interface IServiceBusSettler
{
    Task CompleteAsync(CancellationToken cancellationToken);

    Task DeadLetterAsync(string reason, string description, CancellationToken cancellationToken);

    Task AbandonAsync(CancellationToken cancellationToken);
}

/// <summary>
/// The one decision both hosts (the function app and the self-hosted runner's ServiceBusProcessor) make per message,
/// so they can't drift apart: forward, then complete, dead-letter or abandon.
/// </summary>
public sealed class ServiceBusMessageHandler
{
    private readonly ServiceBusIntake _intake;
    private readonly IEventForwarder _forwarder;

    internal ServiceBusMessageHandler(ServiceBusIntake intake, IEventForwarder forwarder)
    {
        _intake = intake;
        _forwarder = forwarder;
    }

    /// <summary>Forwards the message and settles it through <paramref name="settler"/>; returns what was done.</summary>
    public async Task<Settlement> HandleAsync(ServiceBusReceivedMessage message, string entity, IServiceBusSettler settler, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(settler);
        var settlement = await DecideAsync(ServiceBusMessages.ToMessageData(message), entity, cancellationToken).ConfigureAwait(false);
        switch (settlement.Action)
        {
            case SettlementAction.Complete:
                await settler.CompleteAsync(cancellationToken).ConfigureAwait(false);
                break;
            case SettlementAction.DeadLetter:
                await settler.DeadLetterAsync(settlement.DeadLetterReason!, settlement.DeadLetterDescription!, cancellationToken).ConfigureAwait(false);
                break;
            default:
                await settler.AbandonAsync(cancellationToken).ConfigureAwait(false);
                break;
        }

        return settlement;
    }

    /// <summary>Forwards the message and says how to settle it, without settling.</summary>
    internal async Task<Settlement> DecideAsync(ServiceBusMessageData message, string entity, CancellationToken cancellationToken)
    {
        try
        {
            var result = await _forwarder.ForwardAsync(_intake.Map(message, entity), cancellationToken).ConfigureAwait(false);
            return new Settlement(SettlementAction.Complete, result);
        }
        catch (ForwardingException ex)
        {
            return new Settlement(ex.IsTransient ? SettlementAction.Abandon : SettlementAction.DeadLetter, Error: ex);
        }
    }
}
