using Bridge.Core.Routing;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace Bridge.Core.Tests;

public sealed class RouteValidationTests
{
    private static Dictionary<string, string?> Valid() => new()
    {
        ["Bridge:CloudTasks:EmulatorHost"] = "127.0.0.1:1",
        ["Bridge:Project"] = "p",
        ["Bridge:Location"] = "l",
        ["Bridge:Routes:orders:Queue"] = "orders",
        ["Bridge:Routes:orders:TargetUrl"] = "https://worker.example.com/orders",
        ["Bridge:Routes:orders:ServiceBusEntity"] = "orders-queue",
    };

    private static IReadOnlyList<string> Failures(Dictionary<string, string?> settings)
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(settings).Build();
        using var services = new ServiceCollection().AddLogging().AddBridgeCore(configuration).BuildServiceProvider();
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

    [Fact]
    public void A_complete_configuration_is_valid()
    {
        Assert.Empty(Failures(Valid()));
    }

    [Theory]
    [InlineData("Bridge:Routes:orders:Queue", "", "Bridge:Routes:orders:Queue is required")]
    [InlineData("Bridge:Routes:orders:Queue", "projects/p/locations/l/queues/bad_id", "Bridge:Routes:orders:Queue 'projects/p/locations/l/queues/bad_id'")]
    [InlineData("Bridge:Routes:orders:TargetUrl", "not-a-url", "Bridge:Routes:orders:TargetUrl 'not-a-url' must be an absolute http or https URL")]
    [InlineData("Bridge:Routes:orders:HttpMethod", "FETCH", "Bridge:Routes:orders:HttpMethod 'FETCH'")]
    [InlineData("Bridge:Routes:orders:ServiceAccountEmail", "nobody", "Bridge:Routes:orders:ServiceAccountEmail 'nobody' is not an email address")]
    [InlineData("Bridge:Routes:orders:Audience", "https://x", "Bridge:Routes:orders:Audience is set but")]
    [InlineData("Bridge:Routes:orders:DefaultDelay", "31.00:00:00", "Bridge:Routes:orders:DefaultDelay")]
    [InlineData("Bridge:Routes:orders:DispatchDeadline", "00:00:05", "Bridge:Routes:orders:DispatchDeadline")]
    [InlineData("Bridge:Routes:orders:RetryBudget", "00:00:00", "Bridge:Routes:orders:RetryBudget 00:00:00 must be above zero")]
    [InlineData("Bridge:Routes:orders:RetryBudget", "15.00:00:00", "Bridge:Routes:orders:RetryBudget 15.00:00:00 must be above zero and at most 14.00:00:00")]
    [InlineData("Bridge:RetryInitialDelay", "-00:00:01", "Bridge:RetryInitialDelay -00:00:01 must be above zero")]
    [InlineData("Bridge:RetryMaxDelay", "02:00:00", "Bridge:RetryMaxDelay 02:00:00 must be at least")]
    [InlineData("Bridge:Routes:orders:Headers:0:Name", "X-CloudTasks-TaskName", "Bridge:Routes:orders:Headers:0:Name 'X-CloudTasks-TaskName' is reserved")]
    [InlineData("Bridge:Routes:orders:Headers:0:Name", "X Api", "Bridge:Routes:orders:Headers:0:Name 'X Api' must be an HTTP header name")]
    [InlineData("Bridge:Routes:orders:Headers:0:Value", "2", "Bridge:Routes:orders:Headers:0:Name '' must be an HTTP header name")]
    [InlineData("Bridge:Routes:orders:ReportingServiceAccounts:0", "worker", "Bridge:Routes:orders:ReportingServiceAccounts:0 'worker' is not an email address")]
    [InlineData("Bridge:Routes:orders:CarryHeaders:0", "Authorization", "Bridge:Routes:orders:CarryHeaders:0 'Authorization' is reserved")]
    [InlineData("Bridge:Routes:orders:CarryHeaders:0", "host", "Bridge:Routes:orders:CarryHeaders:0 'host' is reserved")]
    [InlineData("Bridge:Routes:orders:CarryHeaders:0", "X-CloudTasks-QueueName", "Bridge:Routes:orders:CarryHeaders:0 'X-CloudTasks-QueueName' is reserved")]
    [InlineData("Bridge:Routes:orders:CarryHeaders:0", "X-Google-Foo", "Bridge:Routes:orders:CarryHeaders:0 'X-Google-Foo' is reserved")]
    [InlineData("Bridge:Routes:orders:CarryHeaders:0", "x-appengine-country", "Bridge:Routes:orders:CarryHeaders:0 'x-appengine-country' is reserved")]
    [InlineData("Bridge:Routes:orders:CarryHeaders:0", "X-Bridge-Route", "Bridge:Routes:orders:CarryHeaders:0 'X-Bridge-Route' is reserved")]
    [InlineData("Bridge:DefaultRoute", "missing", "Bridge:DefaultRoute 'missing' is not a configured route")]
    [InlineData("Bridge:MaxBodyBytes", "2000000", "Bridge:MaxBodyBytes 2000000")]
    [InlineData("Bridge:Project", "", "needs Bridge:Project and Bridge:Location")]
    public void Each_bad_setting_is_reported_with_its_key(string key, string value, string expected)
    {
        var settings = Valid();
        settings[key] = value;
        var failures = Failures(settings);
        Assert.Contains(failures, f => f.Contains(expected, StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("order-events")]
    [InlineData("orders.v2")]
    [InlineData("ordres/x")]
    public void Route_names_are_letters_digits_and_underscores_because_they_become_app_setting_names(string name)
    {
        var settings = Valid();
        settings[$"Bridge:Routes:{name}:Queue"] = "q";
        settings[$"Bridge:Routes:{name}:TargetUrl"] = "https://worker.example.com/x";

        Assert.Contains(Failures(settings), f => f.StartsWith($"Bridge:Routes:{name}: route name '{name}' may hold only letters, digits and '_'", StringComparison.Ordinal));
    }

    [Fact]
    public void Route_headers_are_indexed_name_value_pairs_and_each_name_is_given_once()
    {
        var settings = Valid();
        settings["Bridge:Routes:orders_v2:Queue"] = "q";
        settings["Bridge:Routes:orders_v2:TargetUrl"] = "https://worker.example.com/x";
        settings["Bridge:Routes:orders:Headers:0:Name"] = "X-Api-Version";
        settings["Bridge:Routes:orders:Headers:0:Value"] = "2";
        settings["Bridge:Routes:orders:Headers:1:Name"] = "X-Tenant-Group";
        settings["Bridge:Routes:orders:Headers:1:Value"] = "a";
        Assert.Empty(Failures(settings));

        settings["Bridge:Routes:orders:Headers:1:Name"] = "x-api-version";
        Assert.Contains(Failures(settings), f => f.StartsWith("Bridge:Routes:orders:Headers:1:Name 'x-api-version' is given twice", StringComparison.Ordinal));
    }

    [Fact]
    public void No_routes_at_all_is_an_error()
    {
        var failures = Failures(new() { ["Bridge:CloudTasks:EmulatorHost"] = "127.0.0.1:1" });
        Assert.Contains(failures, f => f.StartsWith("Bridge:Routes is empty", StringComparison.Ordinal));
    }

    [Fact]
    public void Two_routes_on_one_entity_without_distinct_subjects_are_ambiguous()
    {
        var settings = Valid();
        settings["Bridge:Routes:billing:Queue"] = "billing";
        settings["Bridge:Routes:billing:TargetUrl"] = "https://worker.example.com/billing";
        settings["Bridge:Routes:billing:ServiceBusEntity"] = "orders-queue";
        Assert.Contains(Failures(settings), f => f.Contains("both take Service Bus entity 'orders-queue'", StringComparison.Ordinal));

        settings["Bridge:Routes:billing:ServiceBusSubject"] = "invoice";
        Assert.Empty(Failures(settings));
    }

    [Fact]
    public void Service_bus_messages_find_their_route_by_property_subject_entity_or_default()
    {
        var table = new RouteTable(new BridgeOptions
        {
            Project = "p",
            Location = "l",
            DefaultRoute = "fallback",
            Routes =
            {
                ["orders"] = new RouteOptions { Queue = "orders", TargetUrl = "https://w/o", ServiceBusEntity = "in" },
                ["invoices"] = new RouteOptions { Queue = "invoices", TargetUrl = "https://w/i", ServiceBusEntity = "in", ServiceBusSubject = "invoice" },
                ["fallback"] = new RouteOptions { Queue = "fallback", TargetUrl = "https://w/f" },
            },
        });

        Assert.True(table.TryFindForServiceBus("in", null, null, out var r1));
        Assert.Equal("orders", r1.Name);
        Assert.True(table.TryFindForServiceBus("in", "invoice", null, out var r2));
        Assert.Equal("invoices", r2.Name);
        Assert.True(table.TryFindForServiceBus("in", "invoice", "fallback", out var r3));
        Assert.Equal("fallback", r3.Name);
        Assert.True(table.TryFindForServiceBus("elsewhere", null, null, out var r4));
        Assert.Equal("fallback", r4.Name);
        Assert.False(table.TryFindForServiceBus("in", null, "nope", out _));
        Assert.Equal("projects/p/locations/l/queues/invoices", r2.Queue.ToString());
    }
}
