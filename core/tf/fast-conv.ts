/** Registration of FedSeg's fast conv3d kernels (engines land in the next commit). */
export interface FastConvStatus {
  enabled: boolean;
  engine: string;
}

export function installFastConv(_backendName: string): FastConvStatus {
  return { enabled: false, engine: 'none' };
}
