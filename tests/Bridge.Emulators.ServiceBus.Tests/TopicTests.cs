using Azure.Messaging.ServiceBus;
using Azure.Messaging.ServiceBus.Administration;

namespace Bridge.Emulators.ServiceBus.Tests;

public sealed class TopicTests
{
    static EmulatorFixture StartWithTopic() => EmulatorFixture.Start(o =>
    {
        o.Queues.Add(new QueueDefinition { Name = "audit" });
        o.Topics.Add(new TopicDefinition
        {
            Name = "events",
            Subscriptions =
            {
                new SubscriptionDefinition { Name = "all" },
                new SubscriptionDefinition
                {
                    Name = "invoices",
                    Rules = { new RuleDefinition { Name = "subject", Correlation = new CorrelationFilterDefinition { Subject = "invoice", ApplicationProperties = { ["region"] = "eu" } } } },
                },
                new SubscriptionDefinition
                {
                    Name = "big",
                    Rules = { new RuleDefinition { Name = "sql", SqlExpression = "amount >= 100 AND (sys.Label = 'invoice' OR priority IN ('high', 'urgent')) AND NOT EXISTS(test)" } },
                },
                new SubscriptionDefinition { Name = "forwarded", Properties = { ForwardTo = "audit" } },
            },
        });
    });

    [Fact]
    public async Task Each_subscription_gets_the_messages_its_rules_select()
    {
        await using var f = StartWithTopic();
        await using var sender = f.Client.CreateSender("events");
        await sender.SendMessagesAsync(
        [
            new ServiceBusMessage("invoice-eu-150") { Subject = "invoice", ApplicationProperties = { ["region"] = "eu", ["amount"] = 150 } },
            new ServiceBusMessage("invoice-us-50") { Subject = "invoice", ApplicationProperties = { ["region"] = "us", ["amount"] = 50 } },
            new ServiceBusMessage("order-urgent-500") { Subject = "order", ApplicationProperties = { ["priority"] = "urgent", ["amount"] = 500L } },
            new ServiceBusMessage("test-invoice-900") { Subject = "invoice", ApplicationProperties = { ["amount"] = 900, ["test"] = true } },
        ]);

        Assert.Equal(["invoice-eu-150", "invoice-us-50", "order-urgent-500", "test-invoice-900"], await BodiesAsync(f, "events", "all"));
        Assert.Equal(["invoice-eu-150"], await BodiesAsync(f, "events", "invoices"));
        Assert.Equal(["invoice-eu-150", "order-urgent-500"], await BodiesAsync(f, "events", "big"));
    }

    [Fact]
    public async Task A_subscription_with_ForwardTo_moves_its_messages_on_to_the_queue()
    {
        await using var f = StartWithTopic();
        await using var sender = f.Client.CreateSender("events");
        await sender.SendMessageAsync(new ServiceBusMessage("copy me") { MessageId = "fw-1" });

        await using var audit = f.Client.CreateReceiver("audit");
        var forwarded = await audit.ReceiveMessageAsync(EmulatorFixture.Wait);
        Assert.Equal("fw-1", forwarded.MessageId);
        Assert.Empty(await BodiesAsync(f, "events", "forwarded"));
    }

    [Fact]
    public async Task A_subscription_settles_like_a_queue_and_has_its_own_dead_letter_queue()
    {
        await using var f = StartWithTopic();
        await using var sender = f.Client.CreateSender("events");
        await sender.SendMessageAsync(new ServiceBusMessage("bad") { Subject = "invoice", ApplicationProperties = { ["region"] = "eu" } });

        await using var receiver = f.Client.CreateReceiver("events", "invoices");
        var message = await receiver.ReceiveMessageAsync(EmulatorFixture.Wait);
        await receiver.DeadLetterMessageAsync(message, "Rejected", "by the test");
        await using var deadLetters = f.Client.CreateReceiver("events", "invoices", new ServiceBusReceiverOptions { SubQueue = SubQueue.DeadLetter });
        Assert.Equal("Rejected", (await deadLetters.ReceiveMessageAsync(EmulatorFixture.Wait)).DeadLetterReason);
        Assert.Equal(["bad"], await BodiesAsync(f, "events", "all"));
    }

    [Fact]
    public async Task Dead_lettered_messages_of_a_queue_with_ForwardDeadLetteredMessagesTo_go_there_with_their_source()
    {
        await using var f = EmulatorFixture.Start(o =>
        {
            o.Queues[0].Properties.ForwardDeadLetteredMessagesTo = "poison";
            o.Queues.Add(new QueueDefinition { Name = "poison" });
        });
        await using var sender = f.Client.CreateSender("orders");
        await sender.SendMessageAsync(new ServiceBusMessage("bad") { MessageId = "dl-1" });
        await using var receiver = f.Client.CreateReceiver("orders");
        await receiver.DeadLetterMessageAsync(await receiver.ReceiveMessageAsync(EmulatorFixture.Wait), "Broken");

        await using var poison = f.Client.CreateReceiver("poison");
        var forwarded = await poison.ReceiveMessageAsync(EmulatorFixture.Wait);
        Assert.Equal("dl-1", forwarded.MessageId);
        Assert.Equal("Broken", forwarded.DeadLetterReason);
        Assert.Equal("orders", forwarded.DeadLetterSource);
        await using var deadLetters = f.Client.CreateReceiver("orders", new ServiceBusReceiverOptions { SubQueue = SubQueue.DeadLetter });
        Assert.Empty(await deadLetters.PeekMessagesAsync(5));
    }

    [Fact]
    public async Task A_message_scheduled_on_a_topic_reaches_the_subscriptions_when_due_unless_cancelled()
    {
        var time = EmulatorFixture.NewFakeTime();
        await using var f = EmulatorFixture.Start(o => o.Topics.Add(new TopicDefinition { Name = "events", Subscriptions = { new SubscriptionDefinition { Name = "all" } } }), time);
        await using var sender = f.Client.CreateSender("events");
        await sender.ScheduleMessageAsync(new ServiceBusMessage("due"), time.GetUtcNow().AddMinutes(1));
        var cancelled = await sender.ScheduleMessageAsync(new ServiceBusMessage("cancelled"), time.GetUtcNow().AddMinutes(1));
        await sender.CancelScheduledMessageAsync(cancelled);
        Assert.Empty(await BodiesAsync(f, "events", "all"));

        time.Advance(TimeSpan.FromMinutes(1));
        await using var receiver = f.Client.CreateReceiver("events", "all");
        var due = await receiver.ReceiveMessageAsync(EmulatorFixture.Wait);
        Assert.Equal("due", due.Body.ToString());
        await receiver.CompleteMessageAsync(due);
        Assert.Empty(await BodiesAsync(f, "events", "all"));
    }

    [Fact]
    public async Task Rules_can_be_listed_added_and_removed_with_the_rule_manager()
    {
        await using var f = StartWithTopic();
        await using var rules = f.Client.CreateRuleManager("events", "all");
        var initial = new List<RuleProperties>();
        await foreach (var rule in rules.GetRulesAsync())
        {
            initial.Add(rule);
        }

        Assert.Equal("$Default", Assert.Single(initial).Name);
        Assert.IsType<TrueRuleFilter>(initial[0].Filter);

        await rules.CreateRuleAsync("eu-only", new CorrelationRuleFilter { Subject = "invoice", ApplicationProperties = { ["region"] = "eu" } });
        await rules.CreateRuleAsync("big", new SqlRuleFilter("amount > 100"));
        await rules.DeleteRuleAsync("$Default");
        var duplicate = await Assert.ThrowsAsync<ServiceBusException>(() => rules.CreateRuleAsync("big", new SqlRuleFilter("1=1")));
        Assert.Equal(ServiceBusFailureReason.MessagingEntityAlreadyExists, duplicate.Reason);

        var now = new List<RuleProperties>();
        await foreach (var rule in rules.GetRulesAsync())
        {
            now.Add(rule);
        }

        Assert.Equal(["eu-only", "big"], now.Select(r => r.Name));
        var correlation = Assert.IsType<CorrelationRuleFilter>(now[0].Filter);
        Assert.Equal("invoice", correlation.Subject);
        Assert.Equal("eu", correlation.ApplicationProperties["region"]);
        Assert.Equal("amount > 100", Assert.IsType<SqlRuleFilter>(now[1].Filter).SqlExpression);

        await using var sender = f.Client.CreateSender("events");
        await sender.SendMessagesAsync(
        [
            new ServiceBusMessage("eu") { Subject = "invoice", ApplicationProperties = { ["region"] = "eu" } },
            new ServiceBusMessage("us-small") { Subject = "invoice", ApplicationProperties = { ["region"] = "us", ["amount"] = 5 } },
            new ServiceBusMessage("us-big") { ApplicationProperties = { ["amount"] = 500 } },
        ]);
        Assert.Equal(["eu", "us-big"], await BodiesAsync(f, "events", "all"));
    }

    static async Task<List<string>> BodiesAsync(EmulatorFixture f, string topic, string subscription)
    {
        await using var receiver = f.Client.CreateReceiver(topic, subscription);
        return (await receiver.PeekMessagesAsync(50)).Select(m => m.Body.ToString()).ToList();
    }
}
