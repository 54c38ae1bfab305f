using Microsoft.Azure.Functions.Worker.Extensions.Abstractions;

// Same namespace and shape as the official attribute, so function code is identical in both builds.
namespace Microsoft.Azure.Functions.Worker;

/// <summary>
/// Stand-in for the official Service Bus trigger attribute where its package can't be restored. The Worker SDK names
/// the binding after the class (<c>serviceBusTrigger</c>) and writes its properties into functions.metadata. It
/// lacks the official package's extension information, so a build with it can't run under the Functions host:
/// deploy and <c>func start</c> with <c>-p:UseOfficialServiceBusExtension=true</c>.
/// </summary>
[AttributeUsage(AttributeTargets.Parameter)]
public sealed class ServiceBusTriggerAttribute : TriggerBindingAttribute
{
    public ServiceBusTriggerAttribute(string queueName)
    {
        QueueName = queueName;
    }

    public ServiceBusTriggerAttribute(string topicName, string subscriptionName)
    {
        TopicName = topicName;
        SubscriptionName = subscriptionName;
    }

    public string? QueueName { get; }

    public string? TopicName { get; }

    public string? SubscriptionName { get; }

    /// <summary>App setting (or prefix of identity-based settings) holding the Service Bus connection.</summary>
    public string? Connection { get; set; }

    /// <summary>False: the function settles each message itself (complete, abandon, dead-letter with a reason).</summary>
    public bool AutoCompleteMessages { get; set; } = true;

    /// <summary>
    /// True: the function takes an array of messages (up to the host's <c>maxMessageBatchSize</c>). As on the official
    /// attribute, the Worker SDK turns it into the binding's <c>"cardinality"</c>: <c>"Many"</c>, or <c>"One"</c>.
    /// </summary>
    [DefaultValue(false)]
    public bool IsBatched { get; set; }
}
