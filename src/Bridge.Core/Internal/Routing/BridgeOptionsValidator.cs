using Bridge.Core.Routing;
using Microsoft.Extensions.Options;

namespace Bridge.Core.Internal;

/// <summary>Start-up validation of routes; every message names the key that is wrong.</summary>
internal sealed class BridgeOptionsValidator : IValidateOptions<BridgeOptions>
{
    private static readonly HashSet<string> Methods = new(StringComparer.OrdinalIgnoreCase) { "POST", "PUT", "PATCH", "GET", "DELETE", "HEAD", "OPTIONS" };

    public ValidateOptionsResult Validate(string? name, BridgeOptions options)
    {
        var errors = new List<string>();
        const string root = BridgeOptions.SectionName;
        if (options.Routes.Count == 0)
        {
            errors.Add($"{root}:Routes is empty: configure at least one route ({root}:Routes:<name>:Queue and :TargetUrl).");
        }

        if (!string.IsNullOrEmpty(options.DefaultRoute) && !options.Routes.ContainsKey(options.DefaultRoute))
        {
            errors.Add($"{root}:DefaultRoute '{options.DefaultRoute}' is not a configured route ({string.Join(", ", options.Routes.Keys)}).");
        }

        if (options.MaxBodyBytes is < 1 or > 1_048_569)
        {
            errors.Add($"{root}:MaxBodyBytes {options.MaxBodyBytes} must be between 1 and 1048569 (the Cloud Tasks task limit).");
        }

        if (options.RetryInitialDelay <= TimeSpan.Zero || options.RetryInitialDelay > TimeSpan.FromHours(1))
        {
            errors.Add($"{root}:RetryInitialDelay {options.RetryInitialDelay} must be above zero and at most 01:00:00.");
        }

        if (options.RetryMaxDelay < options.RetryInitialDelay || options.RetryMaxDelay > TimeSpan.FromHours(1))
        {
            errors.Add($"{root}:RetryMaxDelay {options.RetryMaxDelay} must be at least {root}:RetryInitialDelay ({options.RetryInitialDelay}) and at most 01:00:00 (Cloud Tasks keeps a task name taken for about an hour, which is what deduplicates a hand-back).");
        }

        if (options.HttpCoalescingWindow < TimeSpan.Zero || options.HttpCoalescingWindow > BridgeOptions.MaxHttpCoalescingWindow)
        {
            errors.Add($"{root}:HttpCoalescingWindow {options.HttpCoalescingWindow} must be from 00:00:00 (off) to {BridgeOptions.MaxHttpCoalescingWindow} (a request waits no longer for others to share its BatchCreateTasks call).");
        }

        foreach (var (routeName, route) in options.Routes)
        {
            var key = $"{root}:Routes:{routeName}";
            if (!IsRouteName(routeName))
            {
                errors.Add($"{key}: route name '{routeName}' may hold only letters, digits and '_' (it appears in URLs and in app setting names such as Bridge__Routes__{routeName}__Queue, which Linux hosts accept only with letters, digits, '.' and '_').");
            }

            if (string.IsNullOrWhiteSpace(route.Queue))
            {
                errors.Add($"{key}:Queue is required: 'projects/<project>/locations/<location>/queues/<queue>' or a queue id with {root}:Project and {root}:Location.");
            }
            else if (RouteTable.TryResolveQueue(route.Queue, options, out _, out var queueError) is false)
            {
                errors.Add($"{key}:Queue '{route.Queue}': {queueError}");
            }

            if (!Uri.TryCreate(route.TargetUrl, UriKind.Absolute, out var target) || (target.Scheme != Uri.UriSchemeHttps && target.Scheme != Uri.UriSchemeHttp))
            {
                errors.Add($"{key}:TargetUrl '{route.TargetUrl}' must be an absolute http or https URL.");
            }

            if (!Methods.Contains(route.HttpMethod))
            {
                errors.Add($"{key}:HttpMethod '{route.HttpMethod}' must be one of {string.Join(", ", Methods)}.");
            }

            if (!string.IsNullOrEmpty(route.ServiceAccountEmail) && !route.ServiceAccountEmail.Contains('@', StringComparison.Ordinal))
            {
                errors.Add($"{key}:ServiceAccountEmail '{route.ServiceAccountEmail}' is not an email address.");
            }

            foreach (var (list, setting) in new[] { (route.ReportingServiceAccounts, "ReportingServiceAccounts"), (route.PreviousServiceAccounts, "PreviousServiceAccounts") })
            {
                for (var i = 0; i < list.Count; i++)
                {
                    if (list[i] is not { } account || !account.Contains('@', StringComparison.Ordinal) || account.Any(char.IsWhiteSpace))
                    {
                        errors.Add($"{key}:{setting}:{i} '{list[i]}' is not an email address.");
                    }
                }
            }

            for (var i = 0; i < route.CarryHeaders.Count; i++)
            {
                if (string.IsNullOrWhiteSpace(route.CarryHeaders[i]))
                {
                    errors.Add($"{key}:CarryHeaders:{i} is empty.");
                }
                else if (IsReservedForCarrying(route.CarryHeaders[i]))
                {
                    errors.Add($"{key}:CarryHeaders:{i} '{route.CarryHeaders[i]}' is reserved (Authorization, Host, X-CloudTasks-*, X-Google-*, X-AppEngine-* and the bridge's own X-Bridge-*): a caller must not set it on a task.");
                }
            }

            if (!string.IsNullOrEmpty(route.Audience) && string.IsNullOrEmpty(route.ServiceAccountEmail))
            {
                errors.Add($"{key}:Audience is set but {key}:ServiceAccountEmail is not: a token needs an identity.");
            }

            if (route.DefaultDelay is { } delay && (delay < TimeSpan.Zero || delay > ScheduleRules.MaxAhead))
            {
                errors.Add($"{key}:DefaultDelay {delay} must be between 0 and 30 days.");
            }

            if (route.RetryBudget <= TimeSpan.Zero || route.RetryBudget > MaxRetryBudget)
            {
                errors.Add($"{key}:RetryBudget {route.RetryBudget} must be above zero and at most {MaxRetryBudget} (Service Bus' longest message lifetime worth waiting for).");
            }

            if (route.DispatchDeadline is { } deadline && (deadline < TimeSpan.FromSeconds(15) || deadline > TimeSpan.FromMinutes(30)))
            {
                errors.Add($"{key}:DispatchDeadline {deadline} must be between 00:00:15 and 00:30:00.");
            }

            var seen = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
            for (var i = 0; i < route.Headers.Count; i++)
            {
                var header = route.Headers[i];
                if (string.IsNullOrEmpty(header.Name) || !header.Name.All(IsTokenChar))
                {
                    errors.Add($"{key}:Headers:{i}:Name '{header.Name}' must be an HTTP header name; write each header as {key}:Headers:<n>:Name and {key}:Headers:<n>:Value.");
                }
                else if (IsReserved(header.Name))
                {
                    errors.Add($"{key}:Headers:{i}:Name '{header.Name}' is reserved by Cloud Tasks.");
                }
                else if (!seen.Add(header.Name))
                {
                    errors.Add($"{key}:Headers:{i}:Name '{header.Name}' is given twice.");
                }

                if (header.Value.Any(c => c is '\r' or '\n' or '\0'))
                {
                    errors.Add($"{key}:Headers:{i}:Value holds a line break.");
                }
            }
        }

        foreach (var group in options.Routes.Where(r => !string.IsNullOrEmpty(r.Value.ServiceBusEntity)).GroupBy(r => (r.Value.ServiceBusEntity!.ToLowerInvariant(), r.Value.ServiceBusSubject ?? string.Empty)).Where(g => g.Count() > 1))
        {
            errors.Add($"{root}:Routes {string.Join(" and ", group.Select(g => g.Key))} both take Service Bus entity '{group.Key.Item1}'{(group.Key.Item2.Length > 0 ? $" with Subject '{group.Key.Item2}'" : string.Empty)}: set ServiceBusSubject to tell them apart, or name the route in the '{options.RouteProperty}' property.");
        }

        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }

    internal static readonly TimeSpan MaxRetryBudget = TimeSpan.FromDays(14);

    /// <summary>Letters, digits and '_': usable in a URL path and, inside an app setting name, on Linux hosts.</summary>
    internal static bool IsRouteName(string name) => name.Length > 0 && name.All(c => char.IsAsciiLetterOrDigit(c) || c == '_');

    private static bool IsReserved(string header) =>
        header.StartsWith("X-CloudTasks-", StringComparison.OrdinalIgnoreCase) || header.StartsWith("X-Google-", StringComparison.OrdinalIgnoreCase) || header.StartsWith("X-AppEngine-", StringComparison.OrdinalIgnoreCase);

    /// <summary>Headers an event's caller may never put on a task: credentials, routing, and what Cloud Tasks or the bridge set.</summary>
    internal static bool IsReservedForCarrying(string header) =>
        header.Equals("Authorization", StringComparison.OrdinalIgnoreCase)
        || header.Equals("Host", StringComparison.OrdinalIgnoreCase)
        || header.StartsWith("X-Bridge-", StringComparison.OrdinalIgnoreCase)
        || IsReserved(header);

    // RFC 9110 token characters.
    private static bool IsTokenChar(char c) => char.IsAsciiLetterOrDigit(c) || "!#$%&'*+-.^_`|~".Contains(c, StringComparison.Ordinal);
}
