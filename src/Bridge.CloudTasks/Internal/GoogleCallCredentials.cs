using Google.Apis.Auth.OAuth2;
using Google.Apis.Auth.OAuth2.Responses;
using Grpc.Core;

namespace Bridge.CloudTasks.Internal;

/// <summary>
/// Adds "authorization: Bearer …" to each call from a Google credential, and the headers the credential asks for
/// (<c>x-goog-user-project</c> from its quota project), as GAX does. The credential is resolved on first use, so
/// building a client never blocks on reading or exchanging credentials.
/// </summary>
internal static class GoogleCallCredentials
{
    public static CallCredentials Create(Func<CancellationToken, Task<ITokenAccess>> credentialFactory)
    {
        var gate = new SemaphoreSlim(1, 1);
        ITokenAccess? credential = null;
        return CallCredentials.FromInterceptor(async (context, metadata) =>
        {
            AccessTokenWithHeaders token;
            try
            {
                if (credential is null)
                {
                    await gate.WaitAsync(context.CancellationToken).ConfigureAwait(false);
                    try
                    {
                        credential ??= await credentialFactory(context.CancellationToken).ConfigureAwait(false);
                    }
                    finally
                    {
                        gate.Release();
                    }
                }

                token = credential is ITokenAccessWithHeaders withHeaders
                    ? await withHeaders.GetAccessTokenWithHeadersForRequestAsync(context.ServiceUrl, context.CancellationToken).ConfigureAwait(false)
                    : new AccessTokenWithHeaders(await credential.GetAccessTokenForRequestAsync(context.ServiceUrl, context.CancellationToken).ConfigureAwait(false), EmptyHeaders);
            }
            catch (Exception ex) when (ex is not OperationCanceledException || !context.CancellationToken.IsCancellationRequested)
            {
                // gRPC would report any exception here as INTERNAL (transient); say what really happened instead, so a
                // misconfigured credential is not retried forever and an unreachable token endpoint is.
                throw new RpcException(new Status(ToStatusCode(ex), $"Getting a Google access token failed: {Messages(ex)}", ex));
            }

            metadata.Add("authorization", "Bearer " + token.AccessToken);
            foreach (var (name, values) in token.Headers)
            {
                foreach (var value in values)
                {
                    // gRPC metadata keys are lower case; the credential names them as HTTP headers.
                    metadata.Add(name.ToLowerInvariant(), value);
                }
            }
        });
    }

    private static readonly IReadOnlyDictionary<string, IReadOnlyList<string>> EmptyHeaders = new Dictionary<string, IReadOnlyList<string>>();

    // Google's auth library wraps the cause (a refused or mismatched Azure token, say) in a generic message; the
    // cause is what an operator needs to read.
    private static string Messages(Exception ex)
    {
        var messages = new List<string>();
        for (var e = ex; e is not null && messages.Count < 4; e = e.InnerException)
        {
            messages.Add(e.Message);
        }

        return string.Join(" → ", messages.Distinct());
    }

    private static StatusCode ToStatusCode(Exception ex) => ex switch
    {
        TokenResponseException { StatusCode: null } => StatusCode.Unavailable,
        TokenResponseException { StatusCode: var code } when (int)code! >= 500 || (int)code! == 429 => StatusCode.Unavailable,
        HttpRequestException => StatusCode.Unavailable,
        OperationCanceledException => StatusCode.DeadlineExceeded,
        _ => StatusCode.Unauthenticated,
    };
}
