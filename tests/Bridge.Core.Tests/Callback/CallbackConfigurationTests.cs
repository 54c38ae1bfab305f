using System.Text.Json;
using Bridge.Core.Callback;
using Bridge.Core.Internal;
using CloudNative.CloudEvents;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace Bridge.Core.Tests.Callback;

public sealed class CallbackConfigurationTests
{
    private static IReadOnlyList<string> Failures(Dictionary<string, string?> settings)
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(settings).Build();
        using var services = new ServiceCollection().AddLogging().AddBridgeCallback(configuration).BuildServiceProvider();
        try
        {
            services.GetRequiredService<IStartupValidator>().Validate();
            return [];
        }
        catch (OptionsValidationException ex)
        {
            return ex.Failures.ToList();
        }
    }

    private static Dictionary<string, string?> Valid() => new()
    {
        ["Bridge:Callback:PublicUrl"] = "https://bridge.example.com/api/tasks/callback",
        ["Bridge:Callback:AllowedServiceAccounts:0"] = "invoker@p.iam.gserviceaccount.com",
    };

    [Fact]
    public void Google_is_the_default_issuer_and_the_public_url_the_default_audience()
    {
        Assert.Empty(Failures(Valid()));
        var options = new CallbackOptions { PublicUrl = "https://x/cb" };
        Assert.Equal("https://accounts.google.com", Assert.Single(options.EffectiveIssuers).Issuer);
        Assert.Equal("https://accounts.google.com/.well-known/openid-configuration", options.EffectiveIssuers[0].EffectiveDiscoveryUrl);
        Assert.Equal(["https://x/cb"], options.EffectiveAudiences);
    }

    [Fact]
    public void No_allowed_accounts_is_a_start_up_error_never_accept_any()
    {
        var settings = Valid();
        settings.Remove("Bridge:Callback:AllowedServiceAccounts:0");
        Assert.Contains(Failures(settings), f => f.StartsWith("Bridge:Callback:AllowedServiceAccounts is empty", StringComparison.Ordinal));
    }

    [Fact]
    public void No_audience_is_a_start_up_error()
    {
        var settings = Valid();
        settings.Remove("Bridge:Callback:PublicUrl");
        Assert.Contains(Failures(settings), f => f.StartsWith("Bridge:Callback:Audiences is empty", StringComparison.Ordinal));
    }

    [Fact]
    public void A_plain_http_discovery_url_is_refused_unless_on_loopback()
    {
        var settings = Valid();
        settings["Bridge:Callback:Issuers:0:Issuer"] = "http://issuer.example.com";
        Assert.Contains(Failures(settings), f => f.Contains("must be https", StringComparison.Ordinal));
        settings["Bridge:Callback:Issuers:0:Issuer"] = "http://localhost:8124";
        Assert.Empty(Failures(settings));
    }

    [Fact]
    public void A_service_bus_sink_needs_its_entity_and_namespace()
    {
        var settings = Valid();
        settings["Bridge:Outcomes:Sinks:0"] = "ServiceBus";
        Assert.Contains(Failures(settings), f => f.Contains("ServiceBusEntity", StringComparison.Ordinal));
    }

    [Fact]
    public void A_service_bus_outcome_message_is_a_structured_cloud_event_whose_id_is_the_message_id()
    {
        var outcome = new TaskOutcome
        {
            Status = OutcomeStatus.Delivered,
            TaskName = "projects/p/locations/l/queues/q/tasks/t",
            Queue = "projects/p/locations/l/queues/q",
            ReportedBy = "invoker@p.iam.gserviceaccount.com",
            ReceivedAt = new DateTimeOffset(2026, 11, 28, 0, 0, 0, TimeSpan.Zero),
        }.ToCloudEvent();

        var message = ServiceBusOutcomeSink.ToMessage(outcome);

        Assert.Equal(outcome.Id, message.MessageId);
        Assert.StartsWith("application/cloudevents+json", message.ContentType, StringComparison.Ordinal);
        Assert.Equal("dev.bridge.task.delivered", message.Subject);
        using var body = JsonDocument.Parse(message.Body.ToString());
        Assert.Equal(outcome.Id, body.RootElement.GetProperty("id").GetString());
        Assert.Equal("1.0", body.RootElement.GetProperty("specversion").GetString());
        Assert.Equal("projects/p/locations/l/queues/q/tasks/t", body.RootElement.GetProperty("data").GetProperty("taskName").GetString());
        Assert.True(outcome.IsValid);
        Assert.Equal(CloudEventsSpecVersion.V1_0, outcome.SpecVersion);
    }
}
