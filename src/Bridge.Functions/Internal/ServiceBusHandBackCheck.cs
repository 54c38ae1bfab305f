using Bridge.Core;
using Bridge.Core.Intake;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Bridge.Functions.Internal;

/// <summary>
/// Says at start-up what happens to a subscription's messages that can't be forwarded yet when no hand-back queue is
/// set: the hand-back function is then disabled by the host, and such messages are abandoned.
/// </summary>
internal sealed partial class ServiceBusHandBackCheck(ServiceBusMessageHandler handler, IConfiguration configuration, ILogger<ServiceBusHandBackCheck> logger) : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken)
    {
        if (configuration[ServiceBusConnection.QueueSetting] is { Length: > 0 } entity && handler.AbandonsInsteadOfHandingBack(entity))
        {
            LogAbandons(entity, ServiceBusConnection.HandBackQueueSetting);
        }

        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    [LoggerMessage(EventId = 404, Level = LogLevel.Warning, Message = "{Entity} is a topic subscription and {Setting} names no hand-back queue: a message whose task can't be created yet is abandoned and redelivered at once, and dead-lettered after the subscription's MaxDeliveryCount, not handed back with a growing delay within its route's retry budget. Set {Setting} to a queue of its own (infra/azure creates one)")]
    private partial void LogAbandons(string entity, string setting);
}
