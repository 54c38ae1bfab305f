using System.Net;
using Microsoft.Extensions.Options;

namespace Bridge.Server.Internal;

/// <summary>
/// Reads and checks <c>Bridge:Server:Intake</c> before anything is bound, and refuses a start that would expose an
/// unauthenticated intake beyond loopback.
/// </summary>
internal static partial class IntakeSettings
{
    private const string Key = IntakeAuthenticationOptions.SectionName;

    /// <summary>The settings to set, said the same way in the refusal and the docs.</summary>
    public const string WhatToSet =
        $"set {Key}:KeyHashes:0 (SHA-256 hex of a key: printf %s \"$key\" | sha256sum) or {Key}:Entra:TenantId, :Audiences:0 and :AllowedClientIds:0 or :AllowedRoles:0 (environment Bridge__Server__Intake__…)";

    public static IntakeAuthenticationOptions Read(IConfiguration configuration)
    {
        var options = configuration.GetSection(Key).Get<IntakeAuthenticationOptions>() ?? new IntakeAuthenticationOptions();
        var errors = Validate(options).ToList();
        return errors.Count > 0 ? throw new OptionsValidationException(Key, typeof(IntakeAuthenticationOptions), errors) : options;
    }

    public static IEnumerable<string> Validate(IntakeAuthenticationOptions options)
    {
        foreach (var error in IntakeKeyHashes.Validate(options.KeyHashes))
        {
            yield return error;
        }

        var entra = options.Entra;
        if (!entra.IsConfigured)
        {
            yield break;
        }

        if (string.IsNullOrWhiteSpace(entra.TenantId))
        {
            yield return $"{Key}:Entra:TenantId is required when other {Key}:Entra settings are set.";
        }
        else if (entra.TenantId.Trim().ToLowerInvariant() is "common" or "organizations" or "consumers" || entra.TenantId.Contains('/', StringComparison.Ordinal))
        {
            yield return $"{Key}:Entra:TenantId '{entra.TenantId}' is not one tenant: name the tenant id, so tokens of other tenants are refused.";
        }

        if (!entra.Audiences.Exists(a => !string.IsNullOrWhiteSpace(a)))
        {
            yield return $"{Key}:Entra:Audiences needs at least one audience (the intake application's App ID URI api://… and/or its client id).";
        }

        if (!entra.AllowedRoles.Exists(r => !string.IsNullOrWhiteSpace(r)) && !entra.AllowedClientIds.Exists(c => !string.IsNullOrWhiteSpace(c)))
        {
            yield return $"{Key}:Entra needs AllowedRoles or AllowedClientIds: without them any application of the tenant could send events.";
        }

        if (!Uri.TryCreate(entra.Instance, UriKind.Absolute, out var instance)
            || !(instance.Scheme == Uri.UriSchemeHttps || (instance.Scheme == Uri.UriSchemeHttp && instance.IsLoopback)))
        {
            yield return $"{Key}:Entra:Instance '{entra.Instance}' must be an https URL (http only on loopback, for a local test issuer).";
        }
    }

    /// <summary>
    /// Refuses to listen beyond loopback without intake authentication (one line saying what to set); warns when
    /// the opt-out allows it.
    /// </summary>
    public static void EnsureProtected(IntakeAuthenticationOptions options, IPAddress listenAddress, int port, IConfiguration configuration)
    {
        var exposed = BeyondLoopback(listenAddress, port, configuration);
        if (exposed.Count == 0 || options.IsConfigured || options.UnsafeAllowAnonymousBeyondLoopback)
        {
            return;
        }

        throw new UnprotectedIntakeException(
            $"The runner would listen beyond loopback ({string.Join(", ", exposed)}) with no intake authentication: {WhatToSet}; or listen on 127.0.0.1 ({ServerOptions.SectionName}:ListenAddress).");
    }

    /// <summary>The opt-out in force while listening beyond loopback: said at every start.</summary>
    public static void WarnIfOpen(IntakeAuthenticationOptions options, WebApplication app)
    {
        var server = app.Services.GetRequiredService<Microsoft.Extensions.Options.IOptions<ServerOptions>>().Value;
        if (!options.IsConfigured && options.UnsafeAllowAnonymousBeyondLoopback
            && BeyondLoopback(IPAddress.Parse(server.ListenAddress), server.Port, app.Configuration) is { Count: > 0 } exposed)
        {
            LogOpenIntake(app.Services.GetRequiredService<ILoggerFactory>().CreateLogger("Bridge.Server.Intake"), string.Join(", ", exposed));
        }
    }

    [LoggerMessage(EventId = 5300, Level = LogLevel.Warning, Message = "The intake is unauthenticated on {Addresses}: " + Key + ":UnsafeAllowAnonymousBeyondLoopback is on, so anyone who reaches these addresses may send events.")]
    private static partial void LogOpenIntake(ILogger logger, string addresses);

    /// <summary>The addresses, among the runner's and any in <c>Kestrel:Endpoints</c>, that other machines can reach.</summary>
    public static IReadOnlyList<string> BeyondLoopback(IPAddress listenAddress, int port, IConfiguration configuration)
    {
        var exposed = new List<string>();
        if (!IsLoopback(listenAddress))
        {
            exposed.Add(new IPEndPoint(listenAddress, port).ToString());
        }

        foreach (var endpoint in configuration.GetSection("Kestrel:Endpoints").GetChildren())
        {
            if (endpoint["Url"] is { Length: > 0 } url && !IsLoopbackUrl(url))
            {
                exposed.Add(url);
            }
        }

        return exposed;
    }

    public static bool IsLoopback(IPAddress address) => IPAddress.IsLoopback(address.IsIPv4MappedToIPv6 ? address.MapToIPv4() : address);

    /// <summary>localhost or a loopback IP; <c>*</c>, <c>+</c>, wildcards and other host names are not.</summary>
    private static bool IsLoopbackUrl(string url)
    {
        var start = url.IndexOf("://", StringComparison.Ordinal);
        var host = start < 0 ? url : url[(start + 3)..];
        host = host.Split('/')[0];
        host = host.StartsWith('[') ? host[1..host.IndexOf(']', StringComparison.Ordinal)] : host.Split(':')[0];
        return host.Equals("localhost", StringComparison.OrdinalIgnoreCase) || (IPAddress.TryParse(host, out var ip) && IsLoopback(ip));
    }
}
