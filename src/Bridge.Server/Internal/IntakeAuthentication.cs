using System.Security.Claims;
using System.Text.Encodings.Web;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication.JwtBearer;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Authorization.Policy;
using Microsoft.Extensions.Options;
using Microsoft.IdentityModel.Tokens;

namespace Bridge.Server.Internal;

/// <summary>
/// The runner's intake authentication on ASP.NET Core's own: a key scheme compatible with function keys, Entra ID by
/// JwtBearer, and for the dashboard a cookie set once a browser came with <c>?code=</c>. One policy for the intake,
/// one for the dashboard (which loopback callers pass as before).
/// </summary>
internal static class IntakeAuthentication
{
    public const string KeyScheme = "IntakeKey";
    public const string EntraScheme = "IntakeEntra";
    public const string CookieScheme = "IntakeCookie";
    public const string Policy = "BridgeIntake";
    public const string DashboardPolicy = "BridgeDashboard";
    public const string KeyHeader = "x-functions-key";
    public const string KeyQuery = "code";

    /// <summary>Set on the request when an intake identity (not loopback) passed the policy.</summary>
    public const string AuthorizedItem = "Bridge.Server.IntakeAuthorized";

    public static void Add(IServiceCollection services, IntakeAuthenticationOptions options)
    {
        if (!options.IsConfigured)
        {
            return;
        }

        var auth = services.AddAuthentication();
        var schemes = new List<string>();
        var keys = new IntakeKeyHashes(options.KeyHashes);
        if (!keys.IsEmpty)
        {
            auth.AddScheme<IntakeKeyOptions, IntakeKeyHandler>(KeyScheme, o => o.Keys = keys);
            schemes.Add(KeyScheme);

            // "Request starting … ?code=<key>" would put a key in the logs: the request log stays at Warning (appended
            // last, so it wins over a configured Default).
            services.Configure<LoggerFilterOptions>(o => o.Rules.Add(new LoggerFilterRule(null, "Microsoft.AspNetCore.Hosting.Diagnostics", LogLevel.Warning, null)));
        }

        var entra = options.Entra;
        if (entra.IsConfigured)
        {
            auth.AddJwtBearer(EntraScheme, o => ConfigureEntra(o, entra));
            schemes.Add(EntraScheme);
        }

        auth.AddCookie(CookieScheme, o =>
        {
            o.Cookie.Name = "bridge-dashboard";
            o.Cookie.HttpOnly = true;
            o.Cookie.SameSite = SameSiteMode.Strict;
            o.Cookie.SecurePolicy = CookieSecurePolicy.SameAsRequest;
            o.ExpireTimeSpan = TimeSpan.FromHours(8);
            o.SlidingExpiration = false;

            // An API answer, not a redirect to a login page the runner does not have.
            o.Events.OnRedirectToLogin = c =>
            {
                c.Response.StatusCode = StatusCodes.Status401Unauthorized;
                return Task.CompletedTask;
            };
            o.Events.OnRedirectToAccessDenied = c =>
            {
                c.Response.StatusCode = StatusCodes.Status403Forbidden;
                return Task.CompletedTask;
            };
        });

        var requirement = new IntakeCallerRequirement(entra, LoopbackPasses: false);
        services.AddAuthorizationBuilder()
            .AddPolicy(Policy, p => p.AddAuthenticationSchemes([.. schemes]).AddRequirements(requirement))
            .AddPolicy(DashboardPolicy, p => p.AddAuthenticationSchemes([.. schemes, CookieScheme]).AddRequirements(requirement with { LoopbackPasses = true }));
        services.AddSingleton<IAuthorizationHandler, IntakeCallerHandler>();
        services.AddSingleton<IAuthorizationMiddlewareResultHandler, IntakeAnswers>();
    }

    /// <summary>Requires intake authentication on the endpoint when it is configured (open otherwise: loopback only).</summary>
    public static TBuilder RequireIntake<TBuilder>(this TBuilder builder, IntakeAuthenticationOptions options)
        where TBuilder : IEndpointConventionBuilder =>
        options.IsConfigured ? builder.RequireAuthorization(Policy) : builder;

    /// <summary>The dashboard: loopback as before; from elsewhere, callers the intake authentication accepts.</summary>
    public static TBuilder RequireIntakeBeyondLoopback<TBuilder>(this TBuilder builder, IntakeAuthenticationOptions options)
        where TBuilder : IEndpointConventionBuilder =>
        options.IsConfigured ? builder.RequireAuthorization(DashboardPolicy) : builder;

    /// <summary>The dashboard's <c>AllowRemoteRequest</c>: the request passed the policy as an intake caller.</summary>
    public static bool AllowsRemote(HttpContext context) => context.Items.ContainsKey(AuthorizedItem);

    public static bool IsLoopbackConnection(HttpContext context) =>
        context.Connection.RemoteIpAddress is { } remote && IntakeSettings.IsLoopback(remote);

    private static void ConfigureEntra(JwtBearerOptions o, EntraIntakeOptions entra)
    {
        var instance = entra.Instance.TrimEnd('/') + "/";
        var tenant = entra.TenantId!.Trim();
        o.Authority = entra.Authority;
        o.RequireHttpsMetadata = entra.Authority.StartsWith("https:", StringComparison.OrdinalIgnoreCase);
        o.MapInboundClaims = false; // roles, azp and appid as Entra writes them
        o.BackchannelTimeout = TimeSpan.FromSeconds(10);
        List<string> issuers = [entra.Authority, $"{instance}{tenant}/"];
        if (string.Equals(instance, EntraIntakeOptions.DefaultInstance, StringComparison.OrdinalIgnoreCase))
        {
            issuers.Add($"https://sts.windows.net/{tenant}/"); // v1 access tokens (the App ID URI as audience)
        }

        o.TokenValidationParameters = new TokenValidationParameters
        {
            ValidAudiences = [.. entra.Audiences],
            ValidIssuers = issuers,
            AuthenticationType = EntraScheme,
            NameClaimType = "sub",
            RoleClaimType = "roles",
            ClockSkew = TimeSpan.FromMinutes(1),
        };
    }
}

/// <summary>An intake key, or an Entra token with an allowed role or client id; for the dashboard, loopback too.</summary>
internal sealed record IntakeCallerRequirement(EntraIntakeOptions Entra, bool LoopbackPasses) : IAuthorizationRequirement;

internal sealed class IntakeCallerHandler : AuthorizationHandler<IntakeCallerRequirement>
{
    protected override Task HandleRequirementAsync(AuthorizationHandlerContext context, IntakeCallerRequirement requirement)
    {
        var http = context.Resource as HttpContext;
        string? refusal = null;
        foreach (var identity in context.User.Identities.Where(i => i.IsAuthenticated))
        {
            if (identity.AuthenticationType == IntakeAuthentication.KeyScheme
                || (identity.AuthenticationType == IntakeAuthentication.EntraScheme && Admits(requirement.Entra, identity, out refusal)))
            {
                http?.Items[IntakeAuthentication.AuthorizedItem] = true;
                context.Succeed(requirement);
                return Task.CompletedTask;
            }
        }

        if (requirement.LoopbackPasses && http is not null && IntakeAuthentication.IsLoopbackConnection(http))
        {
            context.Succeed(requirement); // the dashboard's own loopback check still applies
        }
        else if (refusal is not null)
        {
            context.Fail(new AuthorizationFailureReason(this, refusal));
        }

        return Task.CompletedTask;
    }

    private static bool Admits(EntraIntakeOptions entra, ClaimsIdentity identity, out string? refusal)
    {
        var clientId = identity.FindFirst("azp")?.Value ?? identity.FindFirst("appid")?.Value;
        if (identity.FindAll("roles").Any(r => entra.AllowedRoles.Contains(r.Value, StringComparer.Ordinal))
            || (clientId is not null && entra.AllowedClientIds.Contains(clientId, StringComparer.OrdinalIgnoreCase)))
        {
            refusal = null;
            return true;
        }

        refusal = $"The token is valid, but it has none of the app roles in {IntakeAuthenticationOptions.SectionName}:Entra:AllowedRoles and its client id ({clientId ?? "none"}) is not in :AllowedClientIds.";
        return false;
    }
}

internal sealed class IntakeKeyOptions : AuthenticationSchemeOptions
{
    public IntakeKeyHashes Keys { get; set; } = new([]);
}

/// <summary>A key in <c>x-functions-key</c> or <c>?code=</c>, as a function app takes it. Never logged.</summary>
internal sealed class IntakeKeyHandler(IOptionsMonitor<IntakeKeyOptions> options, ILoggerFactory logger, UrlEncoder encoder)
    : AuthenticationHandler<IntakeKeyOptions>(options, logger, encoder)
{
    protected override Task<AuthenticateResult> HandleAuthenticateAsync()
    {
        var header = Request.Headers[IntakeAuthentication.KeyHeader];
        var values = header.Count > 0 ? header : Request.Query[IntakeAuthentication.KeyQuery];
        if (values.Count == 0 || string.IsNullOrEmpty(values[0]))
        {
            return Task.FromResult(AuthenticateResult.NoResult());
        }

        if (values.Count > 1 || !Options.Keys.Accepts(values[0]!))
        {
            return Task.FromResult(AuthenticateResult.Fail("The key is not one of the intake keys."));
        }

        var identity = new ClaimsIdentity([new Claim("bridge:intake", "key")], IntakeAuthentication.KeyScheme);
        return Task.FromResult(AuthenticateResult.Success(new AuthenticationTicket(new ClaimsPrincipal(identity), Scheme.Name)));
    }

    protected override Task HandleChallengeAsync(AuthenticationProperties properties)
    {
        Response.StatusCode = StatusCodes.Status401Unauthorized;
        Response.Headers.Append("WWW-Authenticate", $"FunctionKey header=\"{IntakeAuthentication.KeyHeader}\", query=\"{IntakeAuthentication.KeyQuery}\"");
        return Task.CompletedTask;
    }
}

/// <summary>
/// 401 and 403 as problem details naming the reason (never the key or token), and the dashboard's one-time
/// <c>?code=</c> exchanged for a cookie and a redirect to the same page without it.
/// </summary>
internal sealed partial class IntakeAnswers(ILogger<IntakeAnswers> logger) : IAuthorizationMiddlewareResultHandler
{
    private readonly AuthorizationMiddlewareResultHandler _default = new();

    public async Task HandleAsync(RequestDelegate next, HttpContext context, AuthorizationPolicy policy, PolicyAuthorizationResult authorizeResult)
    {
        if (!policy.Requirements.OfType<IntakeCallerRequirement>().Any())
        {
            await _default.HandleAsync(next, context, policy, authorizeResult);
            return;
        }

        if (authorizeResult.Succeeded)
        {
            if (policy.AuthenticationSchemes.Contains(IntakeAuthentication.CookieScheme) && HttpMethods.IsGet(context.Request.Method)
                && context.Request.Query.ContainsKey(IntakeAuthentication.KeyQuery) && context.Items.ContainsKey(IntakeAuthentication.AuthorizedItem)
                && context.User.Identities.Any(i => i.IsAuthenticated && i.AuthenticationType == IntakeAuthentication.KeyScheme))
            {
                // A browser can't send x-functions-key: the key comes once in the URL, then a cookie carries the session.
                await context.SignInAsync(IntakeAuthentication.CookieScheme, new ClaimsPrincipal(new ClaimsIdentity([new Claim("bridge:intake", "key")], IntakeAuthentication.KeyScheme)));
                var rest = context.Request.Query.Where(q => q.Key != IntakeAuthentication.KeyQuery).SelectMany(q => q.Value.Select(v => $"{Uri.EscapeDataString(q.Key)}={Uri.EscapeDataString(v ?? string.Empty)}"));
                var query = string.Join('&', rest);
                context.Response.Redirect(context.Request.PathBase + context.Request.Path + (query.Length > 0 ? "?" + query : string.Empty));
                return;
            }

            await next(context);
            return;
        }

        string reason;
        string detail;
        if (authorizeResult.Forbidden)
        {
            context.Response.StatusCode = StatusCodes.Status403Forbidden;
            reason = "NotAllowed";
            detail = authorizeResult.AuthorizationFailure?.FailureReasons.FirstOrDefault()?.Message ?? "The caller is not allowed to use the intake.";
        }
        else
        {
            foreach (var scheme in policy.AuthenticationSchemes.Where(s => s != IntakeAuthentication.CookieScheme))
            {
                await context.ChallengeAsync(scheme);
            }

            context.Response.StatusCode = StatusCodes.Status401Unauthorized;
            var presented = context.Request.Headers.Authorization.Count > 0 || context.Request.Headers.ContainsKey(IntakeAuthentication.KeyHeader) || context.Request.Query.ContainsKey(IntakeAuthentication.KeyQuery);
            reason = presented ? "InvalidCredentials" : "MissingCredentials";
            detail = presented
                ? "The key or token was not accepted (an unknown key, or a token expired, for another audience or from another tenant: see WWW-Authenticate)."
                : $"The intake needs a key ({IntakeAuthentication.KeyHeader} header or ?{IntakeAuthentication.KeyQuery}=) or an Entra ID bearer token.";
        }

        LogRefused(context.Response.StatusCode, reason);
        await Results.Problem(detail, statusCode: context.Response.StatusCode, title: reason, type: "urn:bridge:intake:" + reason,
            extensions: new Dictionary<string, object?> { ["reason"] = reason }).ExecuteAsync(context);
    }

    [LoggerMessage(EventId = 5301, Level = LogLevel.Information, Message = "Intake call refused: {Status} {Reason}")]
    private partial void LogRefused(int status, string reason);
}
