using Azure.Messaging.ServiceBus;
using Bridge.Core;
using Bridge.Core.Intake;
using Bridge.Functions.Internal;
using Microsoft.Azure.Functions.Worker;

namespace Bridge.Functions.Functions;

/// <summary>
/// The hand-back queue (<c>%BridgeServiceBusHandBackQueue%</c>) → Cloud Tasks: the copies of topic-subscription
/// messages whose task could not be created yet, each forwarded on the route of the subscription it names
/// (<c>bridge-handback-origin</c>) and settled by the same decision as <see cref="ServiceBusForwardFunction"/>'s and
/// the runner's; one that fails again is handed back to this queue with the next delay, until its route's retry
/// budget is spent.
/// </summary>
/// <remarks>
/// Every app has this function, and infra/azure always creates the queue and sets the setting. Where the setting is
/// unset, the Functions host disables only this function at indexing (an unresolved %setting% fails that function's
/// indexing, which the host tolerates: <c>AllowPartialHostStartup</c>); the host and the other functions run, and a
/// subscription's messages are abandoned instead of handed back (<see cref="Internal.ServiceBusHandBackCheck"/> says so).
/// </remarks>
public sealed class ServiceBusHandBackFunction(ServiceBusMessageHandler handler, ServiceBusSenders senders)
{
    public const string QueueSetting = ServiceBusConnection.HandBackQueueSetting;
    public const string ConnectionSetting = ServiceBusConnection.DefaultName;

    [Function("ForwardHandedBackServiceBusMessage")]
    public Task RunAsync(
        [ServiceBusTrigger("%" + QueueSetting + "%", Connection = ConnectionSetting, AutoCompleteMessages = false, IsBatched = true)] ServiceBusReceivedMessage[] messages,
        ServiceBusMessageActions messageActions,
        CancellationToken cancellationToken) =>
        FunctionServiceBusIntake.RunAsync(
            handler,
            senders,
            // The host resolved the trigger's %setting% from the same app settings, so this is set whenever it runs.
            handler.HandBackQueue ?? throw new InvalidOperationException($"{QueueSetting} is not set, yet the hand-back function was invoked: the host and the worker read different settings."),
            messages,
            messageActions,
            cancellationToken);
}
