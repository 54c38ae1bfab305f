using System.Net;
using Bridge.CloudTasks.Internal;
using Google.Apis.Auth.OAuth2;
using Grpc.Core;
using Grpc.Net.Client;

namespace Bridge.CloudTasks;

/// <summary>When a client talks to an emulator instead of the real service.</summary>
public enum EmulatorDetection
{
    /// <summary>Ignore <c>CLOUD_TASKS_EMULATOR_HOST</c>; use only what the builder says.</summary>
    None,

    /// <summary>Require <c>CLOUD_TASKS_EMULATOR_HOST</c> (or <see cref="CloudTasksClientBuilder.EmulatorHost"/>); fail without it.</summary>
    EmulatorOnly,

    /// <summary>Use the emulator when <c>CLOUD_TASKS_EMULATOR_HOST</c> is set, production otherwise.</summary>
    EmulatorOrProduction,
}

/// <summary>
/// Builds a <see cref="CloudTasksClient"/>. Production: TLS to <see cref="Endpoint"/> with Google credentials (explicit,
/// from a file, or application default credentials). Emulator: plaintext HTTP/2 to <c>host:port</c>, no credentials.
/// </summary>
public sealed class CloudTasksClientBuilder
{
    /// <summary><c>https://host[:port]</c> or <c>host:port</c>; default <see cref="CloudTasksClient.DefaultEndpoint"/>.</summary>
    public string? Endpoint { get; set; }

    /// <summary>An emulator as <c>host:port</c>; wins over <see cref="Endpoint"/> and the environment.</summary>
    public string? EmulatorHost { get; set; }

    public EmulatorDetection EmulatorDetection { get; set; } = EmulatorDetection.EmulatorOrProduction;

    /// <summary>The credential to call production with; a <see cref="GoogleCredential"/> or any token source.</summary>
    public ITokenAccess? Credential { get; set; }

    /// <summary>A credential JSON file (service account key, authorized user, external_account).</summary>
    public string? CredentialsPath { get; set; }

    /// <summary>Per-method call settings; copied when the client is built.</summary>
    public CloudTasksSettings? Settings { get; set; }

    /// <summary>Replaces the HTTP/2 handler (custom TLS trust, proxies). The client does not own it.</summary>
    public HttpMessageHandler? HttpHandler { get; set; }

    public TimeProvider TimeProvider { get; set; } = TimeProvider.System;

    /// <summary>Reads environment variables; replaced by tests.</summary>
    internal Func<string, string?> GetEnvironmentVariable { get; set; } = Environment.GetEnvironmentVariable;

    public CloudTasksClient Build()
    {
        var emulatorHost = ResolveEmulatorHost();
        var settings = (Settings ?? CloudTasksSettings.GetDefault()).Clone();
        GrpcChannel channel;
        if (emulatorHost is not null)
        {
            channel = GrpcChannel.ForAddress(ToUri(emulatorHost, Uri.UriSchemeHttp, nameof(EmulatorHost)), new GrpcChannelOptions
            {
                HttpHandler = HttpHandler ?? CreateHandler(),
                DisposeHttpClient = HttpHandler is null,
                Credentials = ChannelCredentials.Insecure,
                MaxReceiveMessageSize = null,
            });
        }
        else
        {
            var endpoint = ToUri(Endpoint ?? CloudTasksClient.DefaultEndpoint, Uri.UriSchemeHttps, nameof(Endpoint));
            if (endpoint.Scheme != Uri.UriSchemeHttps)
            {
                throw new InvalidOperationException(
                    $"Endpoint '{endpoint}' is not https: credentials are only sent over TLS. For a plaintext emulator set EmulatorHost (or {CloudTasksClient.EmulatorHostEnvironmentVariable}) instead.");
            }

            channel = GrpcChannel.ForAddress(endpoint, new GrpcChannelOptions
            {
                HttpHandler = HttpHandler ?? CreateHandler(),
                DisposeHttpClient = HttpHandler is null,
                Credentials = ChannelCredentials.Create(ChannelCredentials.SecureSsl, GoogleCallCredentials.Create(ResolveCredentialAsync)),

                // As GAX: no receive limit (Grpc.Net's default is 4 MB), so a large ListTasks page with FULL views fits.
                MaxReceiveMessageSize = null,
            });
        }

        return new GrpcCloudTasksClient(channel, ownsChannel: true, settings, TimeProvider);
    }

    /// <summary>The emulator host this builder would use, or null for production.</summary>
    internal string? ResolveEmulatorHost()
    {
        if (!string.IsNullOrWhiteSpace(EmulatorHost))
        {
            return EmulatorHost;
        }

        var fromEnvironment = EmulatorDetection == EmulatorDetection.None ? null : GetEnvironmentVariable(CloudTasksClient.EmulatorHostEnvironmentVariable);
        if (string.IsNullOrWhiteSpace(fromEnvironment))
        {
            return EmulatorDetection == EmulatorDetection.EmulatorOnly
                ? throw new InvalidOperationException($"EmulatorDetection is EmulatorOnly but neither EmulatorHost nor {CloudTasksClient.EmulatorHostEnvironmentVariable} is set.")
                : null;
        }

        if (Credential is not null || CredentialsPath is not null || Endpoint is not null)
        {
            throw new InvalidOperationException(
                $"{CloudTasksClient.EmulatorHostEnvironmentVariable} is set, and so are Endpoint or credentials: it is unclear whether the emulator or production is meant. Set EmulatorDetection to None to use production.");
        }

        return fromEnvironment;
    }

    private async Task<ITokenAccess> ResolveCredentialAsync(CancellationToken cancellationToken)
    {
        if (Credential is GoogleCredential google)
        {
            return google.IsCreateScopedRequired ? google.CreateScoped(CloudTasksClient.DefaultAuthScopes) : google;
        }

        if (Credential is not null)
        {
            return Credential;
        }

        var credential = CredentialsPath is not null
            ? await LoadCredentialFileAsync(CredentialsPath, cancellationToken).ConfigureAwait(false)
            : await GoogleCredential.GetApplicationDefaultAsync(cancellationToken).ConfigureAwait(false);
        return credential.IsCreateScopedRequired ? credential.CreateScoped(CloudTasksClient.DefaultAuthScopes) : credential;
    }

    /// <summary>The credential file types accepted; anything else is refused rather than trusted blindly.</summary>
    private static readonly string[] AllowedCredentialTypes =
        ["service_account", "authorized_user", "external_account", "impersonated_service_account", "external_account_authorized_user"];

    private static async Task<GoogleCredential> LoadCredentialFileAsync(string path, CancellationToken cancellationToken)
    {
        string? type;
        try
        {
            await using var stream = File.OpenRead(path);
            using var json = await System.Text.Json.JsonDocument.ParseAsync(stream, cancellationToken: cancellationToken).ConfigureAwait(false);
            type = json.RootElement.TryGetProperty("type", out var t) ? t.GetString() : null;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or System.Text.Json.JsonException)
        {
            throw new InvalidOperationException($"The credential file '{path}' can't be read as JSON: {ex.Message}", ex);
        }

        if (type is null || !AllowedCredentialTypes.Contains(type, StringComparer.Ordinal))
        {
            throw new InvalidOperationException(
                $"The credential file '{path}' has type '{type}'; expected one of: {string.Join(", ", AllowedCredentialTypes)}.");
        }

        return await CredentialFactory.FromFileAsync(path, type, cancellationToken).ConfigureAwait(false);
    }

    private static SocketsHttpHandler CreateHandler() => new()
    {
        EnableMultipleHttp2Connections = true,
        PooledConnectionIdleTimeout = TimeSpan.FromMinutes(5),
        KeepAlivePingDelay = TimeSpan.FromSeconds(60),
        KeepAlivePingTimeout = TimeSpan.FromSeconds(30),
        AutomaticDecompression = DecompressionMethods.None,

        // The client injects trace context itself, from its own span (see GrpcCloudTasksClient), so the handler
        // must not add a second traceparent.
        ActivityHeadersPropagator = null,
    };

    private static Uri ToUri(string value, string defaultScheme, string setting)
    {
        var text = value.Contains("://", StringComparison.Ordinal) ? value : $"{defaultScheme}://{value}";
        if (!Uri.TryCreate(text, UriKind.Absolute, out var uri) || (uri.Scheme != Uri.UriSchemeHttp && uri.Scheme != Uri.UriSchemeHttps) || uri.AbsolutePath != "/")
        {
            throw new ArgumentException($"{setting} '{value}' is not a valid endpoint: expected 'host:port' or 'https://host[:port]'.", setting);
        }

        return uri;
    }
}
