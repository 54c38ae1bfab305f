using Bridge.Emulators.ServiceBus.Internal;

namespace Bridge.Emulators.ServiceBus.Tests;

public sealed class RuleFilterTests
{
    static readonly MessageView Message = new(
        "m-1", "c-1", "to-x", "reply-q", "invoice", null, null, "application/json",
        new Dictionary<string, object?> { ["amount"] = 150, ["region"] = "eu", ["ratio"] = 0.5, ["flag"] = true, ["name"] = "O'Brien" });

    [Theory]
    [InlineData("amount = 150", true)]
    [InlineData("amount > 100 AND region = 'eu'", true)]
    [InlineData("amount > 200 OR region = 'us'", false)]
    [InlineData("NOT (region = 'us')", true)]
    [InlineData("region <> 'eu'", false)]
    [InlineData("region != 'us'", true)]
    [InlineData("ratio < 1", true)]
    [InlineData("amount >= 150.0", true)]
    [InlineData("sys.Label = 'invoice'", true)]
    [InlineData("sys.Subject = 'invoice' AND sys.MessageId = 'm-1' AND sys.CorrelationId = 'c-1'", true)]
    [InlineData("sys.ContentType LIKE 'application/%'", true)]
    [InlineData("sys.To NOT LIKE 'to-_'", false)]
    [InlineData("region IN ('us', 'eu')", true)]
    [InlineData("region NOT IN ('us', 'eu')", false)]
    [InlineData("missing IS NULL", true)]
    [InlineData("region IS NOT NULL", true)]
    [InlineData("missing = 'x'", false)]
    [InlineData("missing <> 'x'", false)]
    [InlineData("EXISTS(region) AND NOT EXISTS(missing)", true)]
    [InlineData("flag = TRUE", true)]
    [InlineData("user.region = 'eu'", true)]
    [InlineData("[region] = 'eu'", true)]
    [InlineData("name = 'O''Brien'", true)]
    [InlineData("1 = 1", true)]
    [InlineData("TRUE", true)]
    [InlineData("FALSE", false)]
    [InlineData("amount = -150", false)]
    public void Sql_filters_evaluate_like_service_bus(string expression, bool expected) =>
        Assert.Equal(expected, SqlRuleFilter.Parse(expression).Matches(Message));

    [Theory]
    [InlineData("amount =")]
    [InlineData("amount == 1")]
    [InlineData("region = 'eu")]
    [InlineData("(amount = 1")]
    [InlineData("amount = 1 extra")]
    [InlineData("amount ~ 1")]
    public void Malformed_sql_filters_are_refused_naming_the_expression(string expression)
    {
        var error = Assert.Throws<FormatException>(() => SqlRuleFilter.Parse(expression));
        Assert.Contains(expression, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Correlation_filters_match_on_every_field_that_is_set()
    {
        Assert.True(new CorrelationRuleFilter(new CorrelationFilterDefinition { Subject = "invoice", ApplicationProperties = { ["amount"] = 150L } }).Matches(Message));
        Assert.False(new CorrelationRuleFilter(new CorrelationFilterDefinition { Subject = "invoice", To = "elsewhere" }).Matches(Message));
        Assert.False(new CorrelationRuleFilter(new CorrelationFilterDefinition { ApplicationProperties = { ["region"] = "us" } }).Matches(Message));
        Assert.True(new CorrelationRuleFilter(new CorrelationFilterDefinition()).Matches(Message));
    }
}
