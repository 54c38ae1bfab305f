using Bridge.CloudTasks;
using Bridge.CloudTasks.V2Beta3;
using Google.Protobuf.WellKnownTypes;

namespace Bridge.Emulators.CloudTasks.Internal;

/// <summary>Queue defaults and limits of the real service.</summary>
internal static class QueueRules
{
    public const double MaxDispatchesPerSecond = 500;
    public const int MaxBurstSize = 500;
    public const int MaxConcurrentDispatches = 5000;
    public const int DefaultConcurrentDispatches = 1000;
    public const int DefaultMaxAttempts = 100;
    public const int DefaultMaxDoublings = 16;
    public static readonly TimeSpan DefaultMinBackoff = TimeSpan.FromMilliseconds(100);
    public static readonly TimeSpan DefaultMaxBackoff = TimeSpan.FromHours(1);
    public static readonly TimeSpan DefaultTaskTtl = TimeSpan.FromDays(31);
    public static readonly TimeSpan DefaultTombstoneTtl = TimeSpan.FromHours(1);
    public static readonly TimeSpan MinTombstoneTtl = TimeSpan.FromHours(1);
    public static readonly TimeSpan MaxTombstoneTtl = TimeSpan.FromDays(9);

    /// <summary>Top-level fields UpdateQueue may change (and any field below them); output-only and immutable ones are refused.</summary>
    public static readonly IReadOnlySet<string> UpdatableFields = new HashSet<string>(StringComparer.Ordinal)
    {
        "rate_limits", "retry_config", "stackdriver_logging_config", "app_engine_http_queue", "http_target", "task_ttl", "tombstone_ttl",
    };

    /// <summary>
    /// An update mask path in the proto form: the REST form (<c>rateLimits.maxDispatchesPerSecond</c>, as gcloud
    /// sends it) becomes <c>rate_limits.max_dispatches_per_second</c>. Refused unless every part names a field and
    /// the first an updatable one.
    /// </summary>
    public static string NormalizeUpdatePath(string path)
    {
        var normalized = ToSnakeCase(path);
        var parts = normalized.Split('.');
        var message = Queue.Descriptor;
        for (var i = 0; i < parts.Length; i++)
        {
            var field = message?.FindFieldByName(parts[i]);
            if (field is null || (i == 0 && !UpdatableFields.Contains(field.Name)))
            {
                throw Errors.InvalidArgument("update_mask", $"'{path}' can't be updated; updatable fields are {string.Join(", ", UpdatableFields.Order(StringComparer.Ordinal))} and the fields below them.");
            }

            message = field.FieldType == Google.Protobuf.Reflection.FieldType.Message && !field.IsRepeated ? field.MessageType : null;
            if (message is null && i < parts.Length - 1)
            {
                throw Errors.InvalidArgument("update_mask", $"'{path}' goes below '{parts[i]}', which has no fields.");
            }
        }

        return normalized;
    }

    /// <summary>
    /// max_burst_size follows the rate when an update changes max_dispatches_per_second without giving a burst
    /// (v2beta3's documented rule); it is then picked again from the new rate.
    /// </summary>
    public static bool BurstFollowsRate(IReadOnlyCollection<string> paths, Queue requested)
    {
        var setsRate = paths.Contains("rate_limits") || paths.Contains("rate_limits.max_dispatches_per_second");
        var givesBurst = paths.Contains("rate_limits.max_burst_size") || (paths.Contains("rate_limits") && requested.RateLimits?.MaxBurstSize > 0);
        return setsRate && !givesBurst;
    }

    public static string ToSnakeCase(string path)
    {
        var builder = new System.Text.StringBuilder(path.Length + 8);
        foreach (var c in path)
        {
            if (char.IsAsciiLetterUpper(c))
            {
                builder.Append('_').Append(char.ToLowerInvariant(c));
            }
            else
            {
                builder.Append(c);
            }
        }

        return builder.ToString();
    }

    /// <summary>Fills what the caller left unset, as the service does ("picked by the service").</summary>
    public static void ApplyDefaults(Queue queue)
    {
        if (queue.HttpTarget is { } target)
        {
            if (target.OidcToken is { } oidc && IsEmpty(oidc))
            {
                target.OidcToken = null;
            }

            if (target.OauthToken is { ServiceAccountEmail.Length: 0, Scope.Length: 0 })
            {
                target.OauthToken = null;
            }
        }

        queue.RateLimits ??= new RateLimits();
        if (queue.RateLimits.MaxDispatchesPerSecond == 0)
        {
            queue.RateLimits.MaxDispatchesPerSecond = MaxDispatchesPerSecond;
        }

        if (queue.RateLimits.MaxBurstSize == 0)
        {
            // Unconfirmed in the service's docs ("chosen based on max_dispatches_per_second"); queues at the
            // default 500/s show 100.
            queue.RateLimits.MaxBurstSize = (int)Math.Clamp(Math.Ceiling(queue.RateLimits.MaxDispatchesPerSecond), 1, 100);
        }

        if (queue.RateLimits.MaxConcurrentDispatches == 0)
        {
            queue.RateLimits.MaxConcurrentDispatches = DefaultConcurrentDispatches;
        }

        queue.RetryConfig ??= new RetryConfig();
        if (queue.RetryConfig.MaxAttempts == 0)
        {
            queue.RetryConfig.MaxAttempts = DefaultMaxAttempts;
        }

        queue.RetryConfig.MinBackoff ??= Duration.FromTimeSpan(DefaultMinBackoff);
        queue.RetryConfig.MaxBackoff ??= Duration.FromTimeSpan(DefaultMaxBackoff);
        queue.RetryConfig.MaxRetryDuration ??= new Duration();
        if (queue.RetryConfig.MaxDoublings == 0)
        {
            queue.RetryConfig.MaxDoublings = DefaultMaxDoublings;
        }

        queue.TaskTtl ??= Duration.FromTimeSpan(DefaultTaskTtl);
        queue.TombstoneTtl ??= Duration.FromTimeSpan(DefaultTombstoneTtl);
        if (queue.Type == Queue.Types.Type.Unspecified)
        {
            queue.Type = Queue.Types.Type.Push;
        }
    }

    /// <summary>Rejects settings the service would reject, naming the field.</summary>
    public static void Validate(Queue queue, string prefix)
    {
        if (queue.RateLimits is { } rate)
        {
            if (rate.MaxDispatchesPerSecond < 0 || rate.MaxDispatchesPerSecond > MaxDispatchesPerSecond)
            {
                throw Errors.InvalidArgument(prefix + "rate_limits.max_dispatches_per_second", $"max_dispatches_per_second must be between 0 and {MaxDispatchesPerSecond}; got {rate.MaxDispatchesPerSecond}.");
            }

            if (rate.MaxBurstSize < 0 || rate.MaxBurstSize > MaxBurstSize)
            {
                throw Errors.InvalidArgument(prefix + "rate_limits.max_burst_size", $"max_burst_size must be between 0 and {MaxBurstSize}; got {rate.MaxBurstSize}.");
            }

            if (rate.MaxConcurrentDispatches < 0 || rate.MaxConcurrentDispatches > MaxConcurrentDispatches)
            {
                throw Errors.InvalidArgument(prefix + "rate_limits.max_concurrent_dispatches", $"max_concurrent_dispatches must be between 0 and {MaxConcurrentDispatches}; got {rate.MaxConcurrentDispatches}.");
            }
        }

        if (queue.RetryConfig is { } retry)
        {
            ValidateRetry(retry, prefix + "retry_config.");
        }

        if (queue.TombstoneTtl is { } tombstone && (tombstone.ToTimeSpan() < MinTombstoneTtl || tombstone.ToTimeSpan() > MaxTombstoneTtl))
        {
            throw Errors.InvalidArgument(prefix + "tombstone_ttl", $"tombstone_ttl must be between 1h and 9 days; got {tombstone.ToTimeSpan()}.");
        }

        if (queue.TaskTtl is { } ttl && (ttl.ToTimeSpan() <= TimeSpan.Zero || ttl.ToTimeSpan() > DefaultTaskTtl))
        {
            throw Errors.InvalidArgument(prefix + "task_ttl", $"task_ttl must be above zero and at most 31 days; got {ttl.ToTimeSpan()}.");
        }

        if (queue.StackdriverLoggingConfig is { SamplingRatio: < 0 or > 1 } logging)
        {
            throw Errors.InvalidArgument(prefix + "stackdriver_logging_config.sampling_ratio", $"sampling_ratio must be between 0.0 and 1.0; got {logging.SamplingRatio}.");
        }

        if (queue.HttpTarget?.UriOverride is { } uri)
        {
            if (uri.HasHost && Uri.CheckHostName(uri.Host) == UriHostNameType.Unknown)
            {
                throw Errors.InvalidArgument(prefix + "http_target.uri_override.host", $"'{uri.Host}' is not a valid host.");
            }

            if (uri.HasPort && (uri.Port < 0 || uri.Port > 65535))
            {
                throw Errors.InvalidArgument(prefix + "http_target.uri_override.port", $"port must be between 1 and 65535, or 0 to clear the port; got {uri.Port}.");
            }
        }

        foreach (var headerOverride in queue.HttpTarget?.HeaderOverrides ?? [])
        {
            if (headerOverride.Header is not { } header)
            {
                throw Errors.InvalidArgument(prefix + "http_target.header_overrides", "Each header override needs a header (key and value).");
            }

            TaskRules.ValidateHeader(header.Key, header.Value, prefix + "http_target.header_overrides");
        }

        // An empty token is what clearing its sub-fields leaves (gcloud's --clear-http-oidc-* flags); ApplyDefaults drops it.
        if (queue.HttpTarget?.OidcToken is { } oidc && !IsEmpty(oidc) && !TaskRules.IsEmail(oidc.ServiceAccountEmail))
        {
            throw Errors.InvalidArgument(prefix + "http_target.oidc_token.service_account_email", "service_account_email must be a service account's email address.");
        }
    }

    /// <summary>A task's retry config over its queue's: the fields the task leaves unset take the queue's values.</summary>
    public static RetryConfig EffectiveRetry(RetryConfig? task, RetryConfig queue)
    {
        var effective = queue.Clone();
        if (task is null)
        {
            return effective;
        }

        if (task.MaxAttempts != 0)
        {
            effective.MaxAttempts = task.MaxAttempts;
        }

        if (task.MaxDoublings != 0)
        {
            effective.MaxDoublings = task.MaxDoublings;
        }

        effective.MinBackoff = task.MinBackoff?.Clone() ?? effective.MinBackoff;
        effective.MaxBackoff = task.MaxBackoff?.Clone() ?? effective.MaxBackoff;
        effective.MaxRetryDuration = task.MaxRetryDuration?.Clone() ?? effective.MaxRetryDuration;
        return effective;
    }

    public static void ValidateRetry(RetryConfig retry, string prefix)
    {
        if (retry.MaxAttempts < -1)
        {
            throw Errors.InvalidArgument(prefix + "max_attempts", $"max_attempts must be -1 (unlimited) or more; got {retry.MaxAttempts}.");
        }

        if (retry.MaxDoublings < 0)
        {
            throw Errors.InvalidArgument(prefix + "max_doublings", $"max_doublings must not be negative; got {retry.MaxDoublings}.");
        }

        foreach (var (name, value) in new[] { ("min_backoff", retry.MinBackoff), ("max_backoff", retry.MaxBackoff), ("max_retry_duration", retry.MaxRetryDuration) })
        {
            if (value is not null && value.ToTimeSpan() < TimeSpan.Zero)
            {
                throw Errors.InvalidArgument(prefix + name, $"{name} must not be negative.");
            }
        }

        if (retry.MinBackoff is not null && retry.MaxBackoff is not null && retry.MinBackoff.ToTimeSpan() > retry.MaxBackoff.ToTimeSpan())
        {
            throw Errors.InvalidArgument(prefix + "min_backoff", $"min_backoff ({retry.MinBackoff.ToTimeSpan()}) must not exceed max_backoff ({retry.MaxBackoff.ToTimeSpan()}).");
        }
    }

    /// <summary>ListQueues' filter: only <c>state: RUNNING|PAUSED|DISABLED</c> (or <c>=</c>) is supported; null for none.</summary>
    public static Queue.Types.State? ParseStateFilter(string filter)
    {
        if (string.IsNullOrWhiteSpace(filter))
        {
            return null;
        }

        var parts = filter.Split([':', '='], 2, StringSplitOptions.TrimEntries);
        if (parts.Length == 2 && parts[0] == "state" && System.Enum.TryParse<Queue.Types.State>(parts[1], ignoreCase: true, out var state) && state != Queue.Types.State.Unspecified)
        {
            return state;
        }

        throw Errors.InvalidArgument("filter", $"Unsupported filter '{filter}'; supported: 'state: RUNNING|PAUSED|DISABLED'.");
    }

    public static QueueName ParseQueueName(string name, string field) =>
        QueueName.TryParse(name, out var parsed) ? parsed : throw Errors.InvalidArgument(field, DescribeBadName(() => QueueName.Parse(name)));

    public static LocationName ParseLocationName(string name, string field) =>
        LocationName.TryParse(name, out var parsed) ? parsed : throw Errors.InvalidArgument(field, DescribeBadName(() => LocationName.Parse(name)));

    public static TaskName ParseTaskName(string name, string field) =>
        TaskName.TryParse(name, out var parsed) ? parsed : throw Errors.InvalidArgument(field, DescribeBadName(() => TaskName.Parse(name)));

    private static string DescribeBadName(Action parse)
    {
        try
        {
            parse();
            return "Invalid resource name.";
        }
        catch (FormatException ex)
        {
            return ex.Message;
        }
    }

    private static bool IsEmpty(OidcToken token) => token.ServiceAccountEmail.Length == 0 && token.Audience.Length == 0;
}
