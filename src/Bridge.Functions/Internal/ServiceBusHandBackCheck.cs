using Bridge.Core;
using Bridge.Core.Intake;
using Bridge.Core.Routing;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Bridge.Functions.Internal;

/// <summary>
/// The function app has no trigger on a hand-back queue (an unset %setting% in a trigger would put the function in
/// error on every app that does not use one): it refuses <see cref="ServiceBusConnection.HandBackQueueSetting"/>,
/// whose copies nothing here would receive, rather than strand them.
/// </summary>
internal sealed class FunctionsHandBackQueueValidator(IConfiguration configuration) : IValidateOptions<BridgeOptions>
{
    public ValidateOptionsResult Validate(string? name, BridgeOptions options) =>
        string.IsNullOrEmpty(configuration[ServiceBusConnection.HandBackQueueSetting])
            ? ValidateOptionsResult.Success
            : ValidateOptionsResult.Fail($"{ServiceBusConnection.HandBackQueueSetting} is served by the self-hosted runner only: the function app has no trigger on a hand-back queue. Have the topic subscription forward into a queue (infra's intakeTopicName does) and take that queue as {ServiceBusConnection.QueueSetting}.");
}

/// <summary>Says at start-up what happens to a subscription's messages that can't be forwarded yet.</summary>
internal sealed partial class ServiceBusHandBackCheck(ServiceBusMessageHandler handler, IConfiguration configuration, ILogger<ServiceBusHandBackCheck> logger) : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken)
    {
        if (configuration[ServiceBusConnection.QueueSetting] is { Length: > 0 } entity && handler.AbandonsInsteadOfHandingBack(entity))
        {
            LogAbandons(entity);
        }

        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    [LoggerMessage(EventId = 404, Level = LogLevel.Warning, Message = "{Entity} is a topic subscription: a message whose task can't be created yet is abandoned and redelivered at once, and dead-lettered after the subscription's MaxDeliveryCount, not handed back with a growing delay within its route's retry budget. Forward the subscription into a queue and take that queue as the intake")]
    private partial void LogAbandons(string entity);
}
