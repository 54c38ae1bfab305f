using Bridge.Core.Intake;

namespace Bridge.Core.Tests;

/// <summary>
/// One client (one AMQP connection) per namespace for what the function app sends itself: hand-back copies to any
/// entity and outcomes share it when their settings name the same namespace. Clients connect lazily, so no broker is
/// needed to count them.
/// </summary>
public sealed class ServiceBusSendersTests
{
    private const string Namespace = "Endpoint=sb://localhost:5999;SharedAccessKeyName=k;SharedAccessKey=v;UseDevelopmentEmulator=true;";

    [Fact]
    public async Task Senders_to_one_namespace_share_one_client_and_another_namespace_gets_its_own()
    {
        await using var senders = new ServiceBusSenders(new ServiceBusConnection { ConnectionString = Namespace });

        var intake = senders.For("orders-in");
        var handBack = senders.For("bridge-handback");
        var outcomes = senders.For(new ServiceBusConnection { ConnectionString = Namespace }, "bridge-outcomes"); // the outcome sink's own settings, same namespace

        Assert.Equal(1, senders.ClientCount);
        Assert.Same(intake, senders.For("ORDERS-IN"));
        Assert.Equal(["orders-in", "bridge-handback", "bridge-outcomes"], new[] { intake.EntityPath, handBack.EntityPath, outcomes.EntityPath });
        Assert.Equal(intake.FullyQualifiedNamespace, outcomes.FullyQualifiedNamespace);

        senders.For(new ServiceBusConnection { ConnectionString = Namespace.Replace("5999", "6000", StringComparison.Ordinal) }, "elsewhere");
        Assert.Equal(2, senders.ClientCount);
    }
}
