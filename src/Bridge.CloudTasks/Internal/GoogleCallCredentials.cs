using Google.Apis.Auth.OAuth2;
using Grpc.Core;

namespace Bridge.CloudTasks.Internal;

/// <summary>
/// Adds "authorization: Bearer …" to each call from a Google credential. The credential is resolved on first use,
/// so building a client never blocks on reading or exchanging credentials.
/// </summary>
internal static class GoogleCallCredentials
{
    public static CallCredentials Create(Func<CancellationToken, Task<ITokenAccess>> credentialFactory)
    {
        var gate = new SemaphoreSlim(1, 1);
        ITokenAccess? credential = null;
        return CallCredentials.FromInterceptor(async (context, metadata) =>
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

            var token = await credential.GetAccessTokenForRequestAsync(context.ServiceUrl, context.CancellationToken).ConfigureAwait(false);
            metadata.Add("authorization", "Bearer " + token);
        });
    }
}
