using Bridge.Core.Callback;
using Microsoft.Extensions.Options;

namespace Bridge.Core.Internal;

/// <summary>An empty trusted list is a start-up error, never "accept any".</summary>
internal sealed class CallbackOptionsValidator : IValidateOptions<CallbackOptions>
{
    public ValidateOptionsResult Validate(string? name, CallbackOptions options)
    {
        const string key = CallbackOptions.SectionName;
        var errors = new List<string>();
        if (options.AllowedServiceAccounts.Count == 0 || options.AllowedServiceAccounts.Any(string.IsNullOrWhiteSpace))
        {
            errors.Add($"{key}:AllowedServiceAccounts is empty: name the service accounts (email) allowed to call the callback.");
        }

        if (options.EffectiveAudiences.Count == 0)
        {
            errors.Add($"{key}:Audiences is empty and {key}:PublicUrl is not set: tokens must be checked against the callback's audience.");
        }

        foreach (var (issuer, i) in options.EffectiveIssuers.Select((issuer, i) => (issuer, i)))
        {
            if (!Uri.TryCreate(issuer.Issuer, UriKind.Absolute, out _))
            {
                errors.Add($"{key}:Issuers:{i}:Issuer '{issuer.Issuer}' must be an absolute URL.");
            }

            if (!Uri.TryCreate(issuer.EffectiveDiscoveryUrl, UriKind.Absolute, out var discovery) || (discovery.Scheme != Uri.UriSchemeHttps && !(discovery.Scheme == Uri.UriSchemeHttp && (discovery.IsLoopback || discovery.Host == "localhost"))))
            {
                errors.Add($"{key}:Issuers:{i}:DiscoveryUrl '{issuer.EffectiveDiscoveryUrl}' must be https (http only on loopback, for the emulator).");
            }
        }

        if (options.ClockSkew < TimeSpan.Zero || options.ClockSkew > TimeSpan.FromMinutes(5))
        {
            errors.Add($"{key}:ClockSkew {options.ClockSkew} must be between 0 and 5 minutes.");
        }

        foreach (var (setting, value, max) in new[]
        {
            (nameof(options.KeyFetchTimeout), options.KeyFetchTimeout, TimeSpan.FromMinutes(1)),
            (nameof(options.KeyGracePeriod), options.KeyGracePeriod, TimeSpan.FromDays(7)),
            (nameof(options.KeyFailureBackoff), options.KeyFailureBackoff, TimeSpan.FromMinutes(5)),
            (nameof(options.KeyRefreshInterval), options.KeyRefreshInterval, TimeSpan.FromHours(1)),
            (nameof(options.KeyCacheDuration), options.KeyCacheDuration, TimeSpan.FromDays(1)),
        })
        {
            if (value < TimeSpan.Zero || value > max || (value == TimeSpan.Zero && setting == nameof(options.KeyFetchTimeout)))
            {
                errors.Add($"{key}:{setting} {value} must be between 0 and {max}{(setting == nameof(options.KeyFetchTimeout) ? " (and not 0)" : string.Empty)}.");
            }
        }

        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }
}
