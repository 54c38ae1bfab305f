namespace Bridge.Emulators.ServiceBus.Tests;

public sealed class ConfigFileTests
{
    // The shape of the official emulator's Config.json (github.com/Azure/azure-service-bus-emulator-installer).
    public const string OfficialSample = """
        {
          "UserConfig": {
            "Namespaces": [
              {
                "Name": "sbemulatorns",
                "Queues": [
                  {
                    "Name": "queue.1",
                    "Properties": {
                      "DeadLetteringOnMessageExpiration": false,
                      "DefaultMessageTimeToLive": "PT1H",
                      "DuplicateDetectionHistoryTimeWindow": "PT20S",
                      "ForwardDeadLetteredMessagesTo": "",
                      "ForwardTo": "",
                      "LockDuration": "PT1M",
                      "MaxDeliveryCount": 3,
                      "RequiresDuplicateDetection": false,
                      "RequiresSession": false
                    }
                  }
                ],
                "Topics": [
                  {
                    "Name": "topic.1",
                    "Properties": {
                      "DefaultMessageTimeToLive": "PT1H",
                      "DuplicateDetectionHistoryTimeWindow": "PT20S",
                      "RequiresDuplicateDetection": true
                    },
                    "Subscriptions": [
                      {
                        "Name": "subscription.1",
                        "Properties": {
                          "DeadLetteringOnMessageExpiration": true,
                          "DefaultMessageTimeToLive": "PT1H",
                          "LockDuration": "PT30S",
                          "MaxDeliveryCount": 10,
                          "ForwardDeadLetteredMessagesTo": "",
                          "ForwardTo": "",
                          "RequiresSession": false
                        },
                        "Rules": [
                          {
                            "Name": "app-prop-filter-1",
                            "Properties": {
                              "FilterType": "Correlation",
                              "CorrelationFilter": {
                                "ContentType": "application/text",
                                "CorrelationId": "id1",
                                "Label": "subject1",
                                "MessageId": "msgid1",
                                "ReplyTo": "someQueue",
                                "ReplyToSessionId": "sessionId",
                                "SessionId": "session1",
                                "To": "xyz",
                                "Properties": { "prop3": "value3" }
                              }
                            }
                          }
                        ]
                      },
                      {
                        "Name": "subscription.2",
                        "Properties": { "MaxDeliveryCount": 5 },
                        "Rules": [
                          { "Name": "sql-filter-1", "Properties": { "FilterType": "Sql", "SqlFilter": { "SqlExpression": "sys.MessageId = '123456' AND userProp1 = 'value1'" } } }
                        ]
                      }
                    ]
                  }
                ]
              }
            ],
            "Logging": { "Type": "File" }
          }
        }
        """;

    [Fact]
    public void The_official_config_file_format_is_read_with_every_property()
    {
        var options = new ServiceBusEmulatorOptions();
        EmulatorConfigFile.ReadInto(OfficialSample, options);

        var queue = Assert.Single(options.Queues);
        Assert.Equal("queue.1", queue.Name);
        Assert.Equal(TimeSpan.FromHours(1), queue.Properties.DefaultMessageTimeToLive);
        Assert.Equal(TimeSpan.FromSeconds(20), queue.Properties.DuplicateDetectionHistoryTimeWindow);
        Assert.Equal(TimeSpan.FromMinutes(1), queue.Properties.LockDuration);
        Assert.Equal(3, queue.Properties.MaxDeliveryCount);
        Assert.Null(queue.Properties.ForwardTo);

        var topic = Assert.Single(options.Topics);
        Assert.True(topic.Properties.RequiresDuplicateDetection);
        Assert.Equal(2, topic.Subscriptions.Count);
        var first = topic.Subscriptions[0];
        Assert.True(first.Properties.DeadLetteringOnMessageExpiration);
        Assert.Equal(TimeSpan.FromSeconds(30), first.Properties.LockDuration);
        var correlation = Assert.Single(first.Rules).Correlation!;
        Assert.Equal("subject1", correlation.Subject);
        Assert.Equal("xyz", correlation.To);
        Assert.Equal("value3", correlation.ApplicationProperties["prop3"]);
        Assert.Equal("sys.MessageId = '123456' AND userProp1 = 'value1'", Assert.Single(topic.Subscriptions[1].Rules).SqlExpression);

        using var emulator = ServiceBusEmulator.Start(options.Clone().Also(o => o.Port = 0));
        Assert.Contains("topic.1/subscriptions/subscription.2/$deadletterqueue", emulator.Entities);
    }

    [Theory]
    [InlineData("""{"UserConfig":{"Namespaces":[{"Queues":[{"Properties":{}}]}]}}""", "UserConfig.Namespaces[0].Queues[0].Name")]
    [InlineData("""{"UserConfig":{"Namespaces":[{"Queues":[{"Name":"q","Properties":{"LockDuration":"soon"}}]}]}}""", "UserConfig.Namespaces[0].Queues[0].Properties.LockDuration")]
    [InlineData("""{"UserConfig":{"Namespaces":[{"Queues":[{"Name":"q","Properties":{"MaxDeliveryCount":0}}]}]}}""", "UserConfig.Namespaces[0].Queues[0].Properties.MaxDeliveryCount")]
    [InlineData("""{"UserConfig":{"Namespaces":[{"Topics":[{"Name":"t","Subscriptions":[{"Name":"s","Rules":[{"Name":"r","Properties":{"FilterType":"Regex"}}]}]}]}]}}""", "Rules[0].Properties.FilterType")]
    [InlineData("""{"Namespaces":[]}""", "UserConfig")]
    public void A_bad_config_file_is_refused_naming_the_bad_key(string json, string expected)
    {
        var error = Assert.Throws<FormatException>(() => EmulatorConfigFile.ReadInto(json, new ServiceBusEmulatorOptions()));
        Assert.Contains(expected, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Entities_that_forward_to_nothing_or_need_sessions_are_refused_at_start()
    {
        var forward = new ServiceBusEmulatorOptions { Port = 0, Queues = { new QueueDefinition { Name = "a", Properties = { ForwardTo = "missing" } } } };
        Assert.Contains("missing", Assert.Throws<InvalidOperationException>(() => ServiceBusEmulator.Start(forward)).Message, StringComparison.Ordinal);
        var sessions = new ServiceBusEmulatorOptions { Port = 0, Queues = { new QueueDefinition { Name = "s", Properties = { RequiresSession = true } } } };
        Assert.Contains("sessions", Assert.Throws<InvalidOperationException>(() => ServiceBusEmulator.Start(sessions)).Message, StringComparison.Ordinal);
        var sql = new ServiceBusEmulatorOptions { Port = 0, Topics = { new TopicDefinition { Name = "t", Subscriptions = { new SubscriptionDefinition { Name = "s", Rules = { new RuleDefinition { SqlExpression = "a = " } } } } } } };
        Assert.Throws<FormatException>(() => ServiceBusEmulator.Start(sql));
    }
}

internal static class OptionsExtensions
{
    public static T Also<T>(this T value, Action<T> change)
    {
        change(value);
        return value;
    }
}
